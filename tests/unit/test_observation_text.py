"""Observation texts word for word against metamon's layout, on a recorded gen9ou battle.

The battle (``gen9_tera_battle``) has a terastallised Pokémon on the bench (Dragapult, Ghost) and
a terastallised opponent (Gholdengo, Fairy). Each space's whole text is compared with a
hand-written string, then word positions with metamon's 0-based index table.
"""

import dataclasses

import numpy as np
import pytest

from metamon import interface as I
from metamon.interface import (
    DefaultObservationSpace,
    ExpandedObservationSpace,
    OpponentMoveObservationSpace,
    PACExpandedObservationSpace,
    PACOpponentMoveObservationSpace,
    PACTeamPreviewObservationSpace,
    PatchPokeAgentTeraBug,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalState,
)
from metamon.tokenizer import get_tokenizer

from _battle_builders import gen9_tera_battle

# --- hand-written texts ----------------------------------------------------------------------

HEAD = "<gen9ou> <anychoice> <player> greattusk boosterenergy protosynthesis fighting ground noeffect nostatus"
MOVES_WITH_CATEGORY = (
    "<move> headlongrush ground physical <move> icespinner ice physical "
    "<move> knockoff dark physical <move> rapidspin normal physical"
)
MOVES_WITHOUT_CATEGORY = "<move> headlongrush ground <move> icespinner ice <move> knockoff dark <move> rapidspin normal"
DEFAULT_SWITCHES = (
    "<switch> dragapult choicespecs infiltrator <moveset> dracometeor shadowball uturn willowisp "
    "<switch> ironvaliant boosterenergy quarkdrive <moveset> closecombat encore knockoff moonblast "
    "<switch> kingambit leftovers supremeoverlord <moveset> ironhead kowtowcleave suckerpunch swordsdance "
    "<switch> rotomwash leftovers levitate <moveset> hydropump painsplit voltswitch willowisp "
    "<switch> tinglu leftovers vesselofruin <moveset> earthquake ruination spikes whirlwind"
)
# Expanded and later: the tera word ends each switch block, after the four moves
TERA_SWITCHES = (
    "<switch> dragapult choicespecs infiltrator <moveset> dracometeor shadowball uturn willowisp ghost "
    "<switch> ironvaliant boosterenergy quarkdrive <moveset> closecombat encore knockoff moonblast notype "
    "<switch> kingambit leftovers supremeoverlord <moveset> ironhead kowtowcleave suckerpunch swordsdance notype "
    "<switch> rotomwash leftovers levitate <moveset> hydropump painsplit voltswitch willowisp notype "
    "<switch> tinglu leftovers vesselofruin <moveset> earthquake ruination spikes whirlwind notype"
)
TAIL = "<conditions> noweather stealthrock noconditions <player_prev> nomove <opp_prev> makeitrain"
REVEALED = "gholdengo <blank> <blank> <blank> <blank> <blank>"
PREVIEW = "corviknight garganacl gholdengo heatran samurott zamazenta"

DEFAULT_TEXT = " ".join([
    HEAD, MOVES_WITH_CATEGORY, DEFAULT_SWITCHES,
    "<opponent> gholdengo unknownitem goodasgold fairy notype noeffect nostatus", TAIL])
EXPANDED_TEXT = " ".join([
    HEAD, "notype", MOVES_WITH_CATEGORY, TERA_SWITCHES,
    "<opponent> gholdengo unknownitem goodasgold fairy notype noeffect nostatus fairy", TAIL, REVEALED])
TEAMPREVIEW_TEXT = EXPANDED_TEXT + " " + PREVIEW
OPPONENT_MOVE_TEXT = " ".join([
    HEAD, "notype", MOVES_WITHOUT_CATEGORY, TERA_SWITCHES,
    "<opponent> gholdengo unknownitem goodasgold fairy notype noeffect nostatus fairy "
    "makeitrain shadowball <blank> <blank>", TAIL, REVEALED, PREVIEW])
# PAC-: the player's tera words (active and switches) read notype, the opponent's stays
PAC_TEAMPREVIEW_TEXT = TEAMPREVIEW_TEXT.replace("willowisp ghost", "willowisp notype")

EXPECTED_TEXTS = {
    DefaultObservationSpace: DEFAULT_TEXT,
    ExpandedObservationSpace: EXPANDED_TEXT,
    TeamPreviewObservationSpace: TEAMPREVIEW_TEXT,
    OpponentMoveObservationSpace: OPPONENT_MOVE_TEXT,
    PACTeamPreviewObservationSpace: PAC_TEAMPREVIEW_TEXT,
}


@pytest.fixture(scope="module")
def tera_state():
    return UniversalState.from_Battle(gen9_tera_battle())


def words_of(space, state) -> list[str]:
    return str(space(state)["text"]).split(" ")


# --- whole texts -----------------------------------------------------------------------------


def test_recorded_state_has_a_terastallised_bench_pokemon(tera_state):
    dragapult = next(p for p in tera_state.available_switches if p.name == "dragapult")
    assert dragapult.tera_type == "ghost"
    assert tera_state.opponent_active_pokemon.tera_type == "fairy"
    assert tera_state.player_active_pokemon.tera_type == "notype"


@pytest.mark.parametrize("space_cls", list(EXPECTED_TEXTS), ids=lambda c: c.__name__)
def test_whole_text_equals_the_hand_written_one(space_cls, tera_state):
    space = space_cls()
    obs = space(tera_state)
    assert str(obs["text"]) == EXPECTED_TEXTS[space_cls]
    assert len(str(obs["text"]).split(" ")) == space.tokenizable["text"]


def test_hand_written_texts_have_metamons_word_counts():
    assert [len(t.split(" ")) for t in (DEFAULT_TEXT, EXPANDED_TEXT, TEAMPREVIEW_TEXT,
                                          OPPONENT_MOVE_TEXT, PAC_TEAMPREVIEW_TEXT)] == [
        87, 100, 106, 106, 106]


# --- metamon's 0-based word index table --------------------------------------------------------

# (space, {block: (first index, last index)})
INDEX_TABLE = {
    DefaultObservationSpace: {
        "head": (0, 1), "player": (2, 9), "moves": (10, 25), "switches": (26, 70),
        "opponent": (71, 78), "conditions": (79, 82), "prev": (83, 86)},
    ExpandedObservationSpace: {
        "head": (0, 1), "player": (2, 10), "moves": (11, 26), "switches": (27, 76),
        "opponent": (77, 85), "conditions": (86, 89), "prev": (90, 93), "revealed": (94, 99)},
    TeamPreviewObservationSpace: {
        "head": (0, 1), "player": (2, 10), "moves": (11, 26), "switches": (27, 76),
        "opponent": (77, 85), "conditions": (86, 89), "prev": (90, 93), "revealed": (94, 99),
        "preview": (100, 105)},
    OpponentMoveObservationSpace: {
        "head": (0, 1), "player": (2, 10), "moves": (11, 22), "switches": (23, 72),
        "opponent": (73, 85), "conditions": (86, 89), "prev": (90, 93), "revealed": (94, 99),
        "preview": (100, 105)},
}


@pytest.mark.parametrize("space_cls", list(INDEX_TABLE), ids=lambda c: c.__name__)
def test_word_indices_follow_metamons_table(space_cls, tera_state):
    words = words_of(space_cls(), tera_state)
    table = INDEX_TABLE[space_cls]
    block = {name: words[first:last + 1] for name, (first, last) in table.items()}
    assert block["head"] == ["<gen9ou>", "<anychoice>"]
    assert block["player"][0] == "<player>"
    move_width = len(block["moves"]) // 4
    assert [block["moves"][i * move_width] for i in range(4)] == ["<move>"] * 4
    switch_width = len(block["switches"]) // 5
    switch_starts = [block["switches"][i * switch_width] for i in range(5)]
    assert switch_starts == ["<switch>"] * 5
    assert block["opponent"][0] == "<opponent>"
    assert block["conditions"][0] == "<conditions>"
    assert block["prev"][0] == "<player_prev>" and block["prev"][2] == "<opp_prev>"
    assert len(words) == max(last for _, last in table.values()) + 1
    # bench Pokémon: <switch> name item ability <moveset> m1 m2 m3 m4 [tera]
    dragapult = block["switches"][:switch_width]
    assert dragapult[:5] == ["<switch>", "dragapult", "choicespecs", "infiltrator", "<moveset>"]
    assert dragapult[5:9] == ["dracometeor", "shadowball", "uturn", "willowisp"]
    if space_cls is DefaultObservationSpace:
        assert switch_width == 9
    else:
        assert switch_width == 10 and dragapult[9] == "ghost"  # tera after the moves
        assert words[10] == "notype"  # the active Pokémon's tera, after its status
        assert block["revealed"] == REVEALED.split(" ")
    if "preview" in block:
        assert block["preview"] == PREVIEW.split(" ")
    if space_cls is OpponentMoveObservationSpace:
        assert words[81] == "fairy"  # the opponent's tera
        assert words[82:86] == ["makeitrain", "shadowball", "<blank>", "<blank>"]
        assert block["moves"][:3] == ["<move>", "headlongrush", "ground"]  # no category


def test_empty_switch_slot_is_8_or_9_blanks(tera_state):
    kingambit = [p for p in tera_state.available_switches if p.name == "kingambit"]
    one_switch = dataclasses.replace(tera_state, available_switches=kingambit)
    default = words_of(DefaultObservationSpace(), one_switch)
    assert default[35:44] == ["<switch>"] + ["<blank>"] * 8
    assert default[26:35] == ["<switch>", "kingambit", "leftovers", "supremeoverlord", "<moveset>",
                              "ironhead", "kowtowcleave", "suckerpunch", "swordsdance"]
    expanded = words_of(ExpandedObservationSpace(), one_switch)
    assert expanded[27:37] == default[26:35] + ["notype"]
    assert expanded[37:47] == ["<switch>"] + ["<blank>"] * 9


# --- numbers -------------------------------------------------------------------------------


def test_numbers_48_and_55(tera_state):
    default = DefaultObservationSpace()(tera_state)["numbers"]
    expanded = ExpandedObservationSpace()(tera_state)["numbers"]
    assert default.shape == (48,) and expanded.shape == (55,)
    assert default.dtype == expanded.dtype == np.float32
    # Expanded = Default with a PP warning after each active move, plus 3 flags
    as_default = np.concatenate([expanded[:16], np.delete(expanded[16:32], [3, 7, 11, 15]),
                                 expanded[32:52]])
    np.testing.assert_array_equal(as_default, default)
    assert expanded[[19, 23, 27, 31]].tolist() == [3.0] * 4  # full PP
    assert expanded[52:].tolist() == [0.0, 0.0, 0.0]  # nobody asleep / frozen; tera used
    np.testing.assert_allclose(default[28:33], [120 / 317, 1.0, 1.0, 1.0, 1.0], rtol=1e-6)
    assert default[33] == np.float32(0.55)  # the opponent's hp


# --- the PAC- spaces -------------------------------------------------------------------------


PAC_SPACES = {
    "PAC-ExpandedObservationSpace": (PACExpandedObservationSpace, ExpandedObservationSpace),
    "PAC-TeamPreviewObservationSpace": (PACTeamPreviewObservationSpace, TeamPreviewObservationSpace),
    "PAC-OpponentMoveObservationSpace": (PACOpponentMoveObservationSpace,
                                         OpponentMoveObservationSpace),
}


@pytest.mark.parametrize("name", list(PAC_SPACES))
def test_pac_spaces_are_registered_under_metamons_names(name, tera_state):
    cls, base_cls = PAC_SPACES[name]
    space = I.get_observation_space(name)
    assert type(space) is cls and isinstance(space, PatchPokeAgentTeraBug)
    assert type(space.base_obs_space) is base_cls
    base = base_cls()
    assert space.tokenizable == base.tokenizable
    assert space.gym_space == base.gym_space
    obs, base_obs = space(tera_state), base(tera_state)
    np.testing.assert_array_equal(obs["numbers"], base_obs["numbers"])
    assert str(obs["text"]) == str(base_obs["text"]).replace("willowisp ghost", "willowisp notype")


def test_pac_patches_the_active_and_switches_but_not_the_opponent(tera_state):
    active = dataclasses.replace(tera_state.player_active_pokemon, tera_type="ground")
    state = dataclasses.replace(tera_state, player_active_pokemon=active)
    words = words_of(PACOpponentMoveObservationSpace(), state)
    assert words[10] == "notype"  # active (unpatched: ground)
    assert words[23 + 9::10][:5] == ["notype"] * 5  # every switch's last word
    assert words[81] == "fairy"  # opponent untouched
    assert words_of(OpponentMoveObservationSpace(), state)[10] == "ground"
    # the input state is not modified
    assert state.player_active_pokemon.tera_type == "ground"
    assert [p.tera_type for p in state.available_switches if p.name == "dragapult"] == ["ghost"]


def test_pac_memory_resets_and_tokenizes_like_its_base(tera_state):
    space = PACTeamPreviewObservationSpace()
    asleep = dataclasses.replace(
        tera_state,
        opponent_active_pokemon=dataclasses.replace(tera_state.opponent_active_pokemon, status="slp"))
    space(asleep)
    assert space(tera_state)["numbers"][52] == 1.0  # sticky through the wrapper
    space.reset()
    assert space(tera_state)["numbers"][52] == 0.0
    tokenizer = get_tokenizer("metamon-gemma-v1")
    tokens = TokenizedObservationSpace(PACTeamPreviewObservationSpace(), tokenizer)(tera_state)
    assert tokens["text_tokens"].tolist() == tokenizer.tokenize(PAC_TEAMPREVIEW_TEXT).tolist()
    assert -1 not in tokens["text_tokens"]
    # the same switch objects on the next turn: the same words
    assert str(space(tera_state)["text"]) == str(space(tera_state)["text"]) == PAC_TEAMPREVIEW_TEXT
