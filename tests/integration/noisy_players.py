"""A player whose battles log poke-env's "Unmanaged move message format received" warning every
turn, through the battle's poke-env logger (the path poke-env's own warning takes), for the tests
of what the command-line tools print (tests/integration/test_quiet_output.py). Importable by the
CLIs as ``tests.integration.noisy_players.NoisyRandomPlayer`` when run from the repository root."""

from __future__ import annotations

from poke_env.player import RandomPlayer

UNMANAGED = "Unmanaged move message format received"


class NoisyRandomPlayer(RandomPlayer):
    def choose_move(self, battle):
        event = ["", "move", "p1a: Tauros", "Body Slam", "p2a: Chansey", "[silent]"]
        battle.logger.warning(f"{UNMANAGED} - cleaned up message %s in battle %s turn %d",
                              event, battle.battle_tag, battle.turn)
        return super().choose_move(battle)
