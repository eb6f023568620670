"""``make demo``: the library's main job on built-in defaults.

1. Our gymnasium env (random legal policy) battles several baselines in gen1ou and gen9ou
   (built-in teams) and gen9randombattle on the local server; a summary table is printed.
2. Heuristic-vs-heuristic battles (GymLeader vs Grunt, both perspectives recorded) fill
   ``--data_dir`` up to ``--demo_battles`` per format (re-running tops it up, never overwrites),
   and ``ParsedReplayDataset`` loads every file back, printing counts.
3. A tiny agent (``tiny_agent.gin`` + ``il.gin``) is trained on that data for ``--train_steps``
   updates (``python -m metamon.rl.train``, a new run under ``--save_dir``), then evaluated
   against RandomBaseline, GymLeader and Grunt in gen1ou (``python -m metamon.rl.evaluate``),
   printing the win-rate table. ``--train_steps 0`` skips this step.

``--log_level`` (default ``quiet``: metamon's warnings, poke-env's errors) sets what is logged
(:mod:`metamon.logs`); it is passed on to ``evaluate``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from metamon.data.generate import count_trajectory_files, generate
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.env.rollout import play_episodes, random_policy, summarize
from metamon.env.wrappers import BattleAgainstBaseline
from metamon.errors import MetamonError
from metamon.formats import is_random_battle
from metamon.interface import TokenizedObservationSpace, get_action_space, get_observation_space, get_reward_function
from metamon.logs import add_log_level_argument, configure_logging
from metamon.rl import evaluate, train
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

DEFAULT_MATCHUPS = [
    ("gen1ou", "RandomBaseline"),
    ("gen1ou", "Gen1BossAI"),
    ("gen1ou", "GymLeader"),
    ("gen9ou", "Grunt"),
    ("gen9ou", "EmeraldKaizo"),
    ("gen9randombattle", "PokeEnvHeuristic"),
    ("gen9randombattle", "MaxBPBaseline"),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.demo", description=__doc__.split("\n")[0])
    p.add_argument("--server_url", default="127.0.0.1:8000")
    p.add_argument("--battles", type=int, default=10, help="battles per matchup")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_dir", default="data/demo", help="where the demo dataset is generated")
    p.add_argument("--demo_battles", type=int, default=150, help="battles per format in the demo dataset")
    p.add_argument("--save_dir", default="runs", help="where the demo agent's run goes")
    p.add_argument("--train_steps", type=int, default=300, help="updates for the demo agent (0: skip)")
    p.add_argument("--eval_battles", type=int, default=20, help="evaluation battles per opponent")
    add_log_level_argument(p)
    args = p.parse_args(argv)
    configure_logging(args.log_level)

    rows = []
    try:
        for battle_format, opponent in DEFAULT_MATCHUPS:
            env = BattleAgainstBaseline(
                battle_format, "TeamPreviewObservationSpace", "DefaultActionSpace", "DefaultShapedReward",
                team_set=None if is_random_battle(battle_format) else "builtin", opponent_type=opponent,
                server_url=args.server_url,
            )
            try:
                policy = random_policy(env.action_space.n, legal_only=True, seed=args.seed)
                results = play_episodes(env, policy, args.battles, desc=f"{battle_format} vs {opponent}")
            finally:
                env.close()
            rows.append((battle_format, opponent, summarize(results)))
    except MetamonError as e:  # a lost server exits 1, bad input 2 (exit_code)
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code

    print("\nRandom legal agent vs baselines (our env, local server)")
    print(f"{'format':18s} {'opponent':18s} {'battles':>7s} {'agent win %':>12s} {'95% CI':>13s} "
          f"{'turns':>6s} {'return':>8s} {'steps/s':>8s}")
    for battle_format, opponent, s in rows:
        lo, hi = s["win_rate_95ci"]
        print(f"{battle_format:18s} {opponent:18s} {s['battles']:7d} {100 * s['win_rate']:11.1f}% "
              f"{100 * lo:5.1f}-{100 * hi:5.1f}% {s['mean_turns']:6.1f} {s['mean_return']:8.2f} "
              f"{s['steps_per_s']:8.1f}")
    try:
        demo_dataset(args)
        if args.train_steps > 0:
            demo_agent(args)
    except MetamonError as e:  # a lost server exits 1, bad input 2 (exit_code)
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _run(module, argv: list) -> None:
    print("\n$ python -m " + module.__name__ + " " + " ".join(shlex.quote(a) for a in argv), flush=True)
    code = module.main(argv)
    if code:
        raise MetamonError(f"{module.__name__} exited with code {code}")


def demo_agent(args) -> None:
    """Train a tiny imitation agent on the demo data, then battle baselines with it."""
    run_name = time.strftime("demo-%Y%m%d-%H%M%S")
    _run(train, [
        "--run_name", run_name, "--save_dir", args.save_dir,
        "--model_gin_config", "tiny_agent.gin", "--train_gin_config", "il.gin",
        "--parsed_replay_dir", args.data_dir, "--formats", "gen1ou", "gen9ou",
        "--epochs", "1", "--steps_per_epoch", str(args.train_steps), "--batch_size_per_gpu", "16",
        "--dloader_workers", "0", "--log_interval", "50", "--eval_gens", "--seed", str(args.seed),
        # a tiny model on little data: shorter context, faster warm-up and a larger step size
        "--gin_bindings", "MetamonAMAGOExperiment.max_seq_len = 32",
        "--gin_bindings", "MetamonAMAGOExperiment.lr_warmup_steps = 50",
        "--gin_bindings", "MetamonAMAGOExperiment.learning_rate = 1e-3",
    ])
    _run(evaluate, [
        "--run_name", run_name, "--ckpt_dir", args.save_dir, "--formats", "gen1ou",
        "--opponents", "RandomBaseline", "GymLeader", "Grunt", "--battles", str(args.eval_battles),
        "--server_url", args.server_url, "--seed", str(args.seed), "--log_level", args.log_level,
    ])


def demo_dataset(args) -> None:
    """Generate heuristic battles into ``args.data_dir`` (topping up) and load them back."""
    formats = ["gen1ou", "gen9ou"]
    for battle_format in formats:
        missing = args.demo_battles - count_trajectory_files(args.data_dir, battle_format) // 2
        if missing > 0:
            print(f"\nGenerating {missing} GymLeader vs Grunt battles in {battle_format} -> {args.data_dir}")
            summary = generate("GymLeader", "Grunt", battle_format, missing, args.data_dir,
                               server_url=args.server_url, concurrent=8, seed=args.seed, log_level=args.log_level)
            print(summary.report("GymLeader", "Grunt"))

    obs_space = TokenizedObservationSpace(get_observation_space("TeamPreviewObservationSpace"),
                                          get_tokenizer(DEFAULT_TOKENIZER))
    dset = ParsedReplayDataset(obs_space, get_action_space("DefaultActionSpace"),
                               get_reward_function("DefaultShapedReward"),
                               dset_root=args.data_dir, formats=formats)
    steps = missing_actions = 0
    for i in range(len(dset)):
        obs, actions, rewards, dones = dset[i]
        steps += len(rewards)
        missing_actions += sum(actions["missing"])
    per_format = {f: count_trajectory_files(args.data_dir, f) for f in formats}
    print(f"\nParsedReplayDataset({args.data_dir}): {len(dset)} trajectories {per_format}, "
          f"{steps} timesteps, {missing_actions} missing actions, skipped {dict(dset.skipped) or 0}")


if __name__ == "__main__":
    sys.exit(main())
