"""PokemonTokenizer semantics, the shipped vocabulary's coverage and the vocabulary builder."""

import json
from collections import Counter

import numpy as np
import pytest
from poke_env.battle import Effect, Field, MoveCategory, PokemonType, SideCondition, Status, Weather
from poke_env.battle.move import SPECIAL_MOVES
from poke_env.data import GenData

from metamon.errors import MetamonError, UnknownNameError
from metamon.formats import known_formats
from metamon.interface import OBSERVATION_SPECIAL_TOKENS
from metamon.names import clean_name, clean_no_numbers, move_name, pokemon_name
from metamon.tokenizer import (
    DEFAULT_TOKENIZER,
    UNKNOWN_TOKEN,
    VOCAB_DIR,
    PokemonTokenizer,
    VocabularyError,
    available_tokenizers,
    build_vocab,
    get_tokenizer,
    vocabulary_to_json,
)

# DefaultObservationSpace text of a small gen1ou state (87 words).
GEN1_TEXT = (
    "<gen1ou> <anychoice> <player> alakazam unknownitem noability notype psychic noeffect nostatus "
    "<move> psychic psychic special <move> recover normal status <move> seismictoss fighting physical "
    "<move> thunderwave electric status "
    "<switch> chansey unknownitem noability <moveset> blizzard surf <blank> <blank> "
    "<switch> starmie unknownitem noability <moveset> blizzard surf <blank> <blank> "
    + "<switch> <blank> <blank> <blank> <blank> <blank> <blank> <blank> <blank> " * 3
    + "<opponent> tauros unknownitem noability normal notype noeffect nostatus "
    "<conditions> noweather noconditions reflect <player_prev> nomove <opp_prev> bodyslam"
)


def small_tokenizer():
    tok = PokemonTokenizer()
    tok.load_tokens({"<blank>": 0, "pikachu": 1, "thunderbolt": 2, "electric": 3})
    return tok


@pytest.fixture(scope="module")
def vocab():
    return get_tokenizer(DEFAULT_TOKENIZER)


# -- PokemonTokenizer ----------------------------------------------------------------------


def test_tokenize_exact_ids_int32():
    tok = small_tokenizer()
    ids = tok.tokenize("pikachu thunderbolt electric <blank> pikachu")
    assert ids.dtype == np.int32
    assert ids.tolist() == [1, 2, 3, 0, 1]
    assert tok.unknown_words == Counter()


def test_fresh_tokenizer_is_empty_frozen_custom():
    tok = PokemonTokenizer()
    assert (len(tok), tok.name, tok.frozen, tok.all_words) == (0, "custom", True, [])
    assert tok.tokenize("anything").tolist() == [UNKNOWN_TOKEN]
    assert UNKNOWN_TOKEN == -1


def test_unknown_words_map_to_minus_one_and_are_counted():
    tok = small_tokenizer()
    assert tok.tokenize("pikachu raichu raichu Pikachu").tolist() == [1, -1, -1, -1]
    assert tok.tokenize("raichu").tolist() == [-1]
    assert tok.unknown_words == Counter({"raichu": 3, "Pikachu": 1})
    assert len(tok) == 4  # frozen: nothing added
    tok.reset_unknown_counts()
    assert tok.unknown_words == Counter()


def test_split_is_on_single_spaces():
    tok = small_tokenizer()
    assert tok.tokenize("pikachu  electric").tolist() == [1, -1, 3]
    assert tok.unknown_words == Counter({"": 1})


def test_getitem_and_contains_do_not_count():
    tok = small_tokenizer()
    assert (tok["thunderbolt"], tok["raichu"]) == (2, -1)
    assert "electric" in tok and "raichu" not in tok
    assert tok.unknown_words == Counter()


def test_tokenize_accepts_numpy_text_and_rejects_other_types():
    tok = small_tokenizer()
    assert tok.tokenize(np.array("pikachu electric")).tolist() == [1, 3]
    assert tok.tokenize(np.str_("electric")).tolist() == [3]
    with pytest.raises(TypeError, match="list"):
        tok.tokenize(["pikachu"])


def test_unfrozen_adds_words_with_next_id_then_sort_renumbers_only_new():
    tok = small_tokenizer()
    tok.unfreeze()
    assert tok.tokenize("zapdos pikachu articuno zapdos").tolist() == [4, 1, 5, 4]
    assert len(tok) == 6 and tok.new_token == 6
    assert tok.unknown_words == Counter()
    assert tok.tokenize("zapdos  pikachu").tolist() == [4, -1, 1]  # the empty word is never added
    assert len(tok) == 6 and tok.unknown_words == Counter({"": 1})
    tok.sort_tokens()
    assert tok.tokenize("articuno zapdos <blank> electric").tolist() == [4, 5, 0, 3]
    assert tok.all_words == ["<blank>", "pikachu", "thunderbolt", "electric", "articuno", "zapdos"]
    tok.freeze()
    assert tok.tokenize("moltres").tolist() == [-1]
    assert len(tok) == 6


def test_save_load_round_trip(tmp_path):
    tok = small_tokenizer()
    tok.unfreeze()
    tok.tokenize("mew")
    path = tmp_path / "vocab.json"
    tok.save_tokens_to_disk(path)
    assert json.loads(path.read_text()) == {"<blank>": 0, "pikachu": 1, "thunderbolt": 2, "electric": 3, "mew": 4}
    shuffled = {"mew": 4, "<blank>": 0, "pikachu": 1, "thunderbolt": 2, "electric": 3}
    assert path.read_text() == vocabulary_to_json(shuffled)

    loaded = PokemonTokenizer()
    loaded.tokenize("stale")
    loaded.load_tokens_from_disk(path)
    assert loaded.unknown_words == Counter()
    assert loaded.all_words == tok.all_words
    assert loaded.tokenize("mew electric").tolist() == [4, 3]
    # After a reload every word is in the initial block: sorting new words changes nothing.
    loaded.unfreeze()
    loaded.tokenize("celebi")
    loaded.sort_tokens()
    assert loaded.tokenize("mew celebi").tolist() == [4, 5]


def test_vocabulary_to_json_orders_by_id():
    text = vocabulary_to_json({"b": 1, "a": 2, "c": 0})
    assert text == '{\n "c": 0,\n "b": 1,\n "a": 2\n}\n'


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"a": 0, "b": 2}, "missing ids \\[1\\]"),
        ({"a": 0, "b": 0}, "duplicated ids \\[0\\]"),
        ({"a b": 0}, "invalid word 'a b'"),
        ({"": 0}, "invalid word ''"),
        ({"a": True}, "not an integer id"),
        ({"a": "0"}, "not an integer id"),
        (["a"], "must be a JSON object"),
    ],
)
def test_load_tokens_rejects_malformed_vocabularies(bad, message):
    with pytest.raises(VocabularyError, match=message):
        PokemonTokenizer().load_tokens(bad)


# -- get_tokenizer ---------------------------------------------------------------------------


def test_get_tokenizer_by_name_returns_independent_frozen_copies():
    a, b = get_tokenizer(DEFAULT_TOKENIZER), get_tokenizer()
    assert a.name == b.name == DEFAULT_TOKENIZER == "metamon-gemma-v1"
    assert a.frozen and len(a) == len(json.loads((VOCAB_DIR / f"{DEFAULT_TOKENIZER}.json").read_text()))
    a.unfreeze()
    a.tokenize("definitelynotaword")
    assert "definitelynotaword" in a and "definitelynotaword" not in b


def test_available_tokenizers_lists_vocab_files_only():
    names = available_tokenizers()
    assert DEFAULT_TOKENIZER in names
    assert not any(name.endswith(".meta") for name in names)


def test_get_tokenizer_unknown_name():
    with pytest.raises(UnknownNameError, match="Unknown tokenizer 'allreplays-v9'") as info:
        get_tokenizer("allreplays-v9")
    assert info.value.options == available_tokenizers()


def test_get_tokenizer_from_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"x": 1, "y": 0}))
    tok = get_tokenizer(str(path))
    assert tok.name == str(path.resolve())
    assert tok.tokenize("x y z").tolist() == [1, 0, -1]
    with pytest.raises(VocabularyError, match="does not exist"):
        get_tokenizer(str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(VocabularyError, match="not valid JSON"):
        get_tokenizer(str(tmp_path / "broken.json"))


# -- the shipped vocabulary --------------------------------------------------------------


def test_vocabulary_ids_are_contiguous_brackets_first_then_sorted(vocab):
    words = vocab.all_words
    assert [vocab[w] for w in words] == list(range(len(words)))
    n_bracketed = sum(w.startswith("<") for w in words)
    assert words[:n_bracketed] == sorted(words[:n_bracketed])
    assert words[n_bracketed:] == sorted(words[n_bracketed:])
    assert words[:4] == ["<anychoice>", "<blank>", "<conditions>", "<forcedswitch>"]
    assert all(w.startswith("<") and w.endswith(">") for w in words[:n_bracketed])


def test_example_observation_text_is_fully_known(vocab):
    ids = vocab.tokenize(GEN1_TEXT)
    assert ids.shape == (87,)
    assert UNKNOWN_TOKEN not in ids
    assert ids[:3].tolist() == [vocab["<gen1ou>"], 0, vocab["<player>"]]
    assert ids[-1] == vocab["bodyslam"]


def test_special_tokens_and_fixed_word_lists(vocab):
    assert build_vocab.SPECIAL_TOKENS == (
        "<anychoice>", "<blank>", "<conditions>", "<forcedswitch>", "<move>", "<moveset>",
        "<opp_prev>", "<opponent>", "<player>", "<player_prev>", "<switch>",
    )
    assert build_vocab.SPECIAL_TOKENS == OBSERVATION_SPECIAL_TOKENS
    fixed = (
        build_vocab.SPECIAL_TOKENS + build_vocab.SENTINEL_WORDS + build_vocab.STATUS_WORDS + build_vocab.CATEGORY_WORDS
    )
    assert [w for w in fixed if w not in vocab] == []
    assert "nofield" in vocab and "unknownitem" in vocab


def test_every_species_move_ability_and_type_is_in_vocabulary(vocab):
    missing = set()
    for gen in range(1, 10):
        data = GenData.from_gen(gen)
        for species, entry in data.pokedex.items():
            missing |= {pokemon_name(species), pokemon_name(entry["baseSpecies"])}
            missing |= {clean_no_numbers(a) for a in entry.get("abilities", {}).values() if a}
        missing |= {move_name(m) for m in data.moves} | {move_name(m) for m in SPECIAL_MOVES}
        missing |= {clean_name(t) for t in data.type_chart} | set(data.natures)
    assert sorted(w for w in missing if w not in vocab) == []
    for word in ("rotomwash", "rotom", "gastrodoneast", "hiddenpower", "visegrip", "return", "voltthunderbolt"):
        assert word in vocab, word
    assert "hiddenpowerfire" not in vocab and "vicegrip" not in vocab


def test_every_enum_value_and_format_is_in_vocabulary(vocab):
    words = {clean_name(t) for t in PokemonType.__members__} | {clean_name(c) for c in MoveCategory.__members__}
    for enum in (Status, Effect, SideCondition, Weather, Field):
        words |= {clean_no_numbers(name) for name in enum.__members__}
    words |= {f"<{fmt}>" for fmt in known_formats()}
    assert sorted(w for w in words if w not in vocab) == []
    expected_examples = (
        "threequestionmarks", "stellar", "perish", "fallen", "leechseed", "stealthrock", "toxicspikes",
        "snow", "snowscape", "raindance", "electricterrain", "<gen9ou>", "<gen1ou>", "<gen9randombattle>",
    )
    assert [w for w in expected_examples if w not in vocab] == []


def test_showdown_items_are_in_vocabulary(vocab):
    for item in ("leftovers", "choicescarf", "kingsrock", "nevermeltice", "berry", "mintberry", "boosterenergy"):
        assert item in vocab, item
    assert "tr" in vocab  # "TR01".."TR99" all normalise to "tr": clean_no_numbers drops digits


def test_meta_file_records_sources_and_sizes(vocab):
    meta = json.loads((VOCAB_DIR / f"{DEFAULT_TOKENIZER}.meta.json").read_text())
    assert meta["name"] == DEFAULT_TOKENIZER
    assert meta["size"] == len(vocab)
    assert meta["sources"] == {"poke-env": "0.16.1", "pokemon-showdown": "0.11.11", "generations": list(range(1, 10))}
    sizes = meta["category_sizes"]
    assert sizes["special"] == 11 and sizes["status"] == 7 and sizes["sentinels"] == 11
    assert sizes["formats"] == len(known_formats())
    assert sum(sizes.values()) >= len(vocab)


def test_committed_vocabulary_matches_a_rebuild():
    assert build_vocab.check_vocabulary(DEFAULT_TOKENIZER) == []


# -- the builder ---------------------------------------------------------------------------


def test_assign_ids_orders_brackets_then_words():
    ids = build_vocab.assign_ids({"zubat", "<switch>", "abra", "<blank>", "mew"})
    assert ids == {"<blank>": 0, "<switch>": 1, "abra": 2, "mew": 3, "zubat": 4}
    with pytest.raises(MetamonError, match="no space"):
        build_vocab.assign_ids({"two words"})


@pytest.fixture
def tiny_recipe(monkeypatch):
    recipe = {"words": {"pikachu", "<blank>", "electric"}, "special": {"<blank>"}}
    monkeypatch.setitem(build_vocab.RECIPES, "tiny-v0", lambda: {k: set(v) for k, v in recipe.items()})
    return "tiny-v0"


def test_builder_writes_once_and_check_detects_edits(tiny_recipe, tmp_path, capsys):
    path = build_vocab.write_vocabulary(tiny_recipe, tmp_path)
    assert json.loads(path.read_text()) == {"<blank>": 0, "electric": 1, "pikachu": 2}
    meta = json.loads((tmp_path / "tiny-v0.meta.json").read_text())
    assert (meta["size"], meta["category_sizes"]) == (3, {"special": 1, "words": 3})
    before = path.read_bytes()

    with pytest.raises(build_vocab.VocabularyExistsError, match="never regenerated in place"):
        build_vocab.write_vocabulary(tiny_recipe, tmp_path)
    assert path.read_bytes() == before
    assert build_vocab.main(["--name", tiny_recipe, "--vocab-dir", str(tmp_path)]) == 2

    assert build_vocab.check_vocabulary(tiny_recipe, tmp_path) == []
    assert build_vocab.main(["--name", tiny_recipe, "--check", "--vocab-dir", str(tmp_path)]) == 0

    path.write_text(json.dumps({"<blank>": 0, "pikachu": 1, "electric": 2}, indent=1) + "\n")
    problems = build_vocab.check_vocabulary(tiny_recipe, tmp_path)
    assert len(problems) == 1 and "line 3" in problems[0] and "tiny-v0.json differs" in problems[0]
    assert build_vocab.main(["--name", tiny_recipe, "--check", "--vocab-dir", str(tmp_path)]) == 1
    assert "differs from a rebuild" in capsys.readouterr().err


def test_builder_check_reports_missing_files(tiny_recipe, tmp_path):
    problems = build_vocab.check_vocabulary(tiny_recipe, tmp_path)
    assert problems == [f"{tmp_path / 'tiny-v0.json'} is missing", f"{tmp_path / 'tiny-v0.meta.json'} is missing"]


def test_builder_unknown_recipe():
    with pytest.raises(UnknownNameError, match="Unknown vocabulary recipe 'nope-v1'"):
        build_vocab.build("nope-v1")


def test_tokenize_words_equals_tokenizing_the_joined_text():
    tok = small_tokenizer()
    words = ["pikachu", "raichu", "<blank>", "electric", "raichu"]
    ids = tok.tokenize_words(words)
    assert ids.dtype == np.int32 and ids.tolist() == [1, -1, 0, 3, -1]
    assert tok.unknown_words == Counter({"raichu": 2})
    assert tok.tokenize_words(words).tolist() == tok.tokenize(" ".join(words)).tolist()
    assert tok.tokenize_words([]).shape == (0,)


def test_tokenize_words_unfrozen_never_adds_empty_or_spaced_words():
    tok = small_tokenizer()
    tok.unfreeze()
    assert tok.tokenize_words(["raichu", "", "two words", "raichu"]).tolist() == [4, -1, -1, 4]
    assert tok.all_words[4:] == ["raichu"]
