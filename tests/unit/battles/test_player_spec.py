import pytest
from poke_env.player import RandomPlayer

from metamon.baselines import GymLeader
from metamon.battles import PlayerFactory, PlayerSpec, check_spec, resolve_spec
from metamon.battles.tournament import canonical_spec
from metamon.errors import MetamonError, UnknownNameError
from metamon.teams import TeamSet


@pytest.mark.parametrize(
    "text, kind, target, epoch, canonical, label",
    [
        ("GymLeader", "baseline", "GymLeader", None, "GymLeader", "GymLeader"),
        ("baseline:Grunt", "baseline", "Grunt", None, "Grunt", "Grunt"),
        ("poke_env.player.RandomPlayer", "class", "poke_env.player.RandomPlayer", None,
         "class:poke_env.player.RandomPlayer", "RandomPlayer"),
        ("run:runs/my_run@4", "run", "runs/my_run", 4, "run:runs/my_run@4", "my_run@4"),
        ("run:runs/my_run/", "run", "runs/my_run/", None, "run:runs/my_run/", "my_run"),
        ("run:odd@name@12", "run", "odd@name", 12, "run:odd@name@12", "odd@name@12"),
        ("pretrained:SyntheticRLV2@40", "pretrained", "SyntheticRLV2", 40, "pretrained:SyntheticRLV2@40",
         "SyntheticRLV2@40"),
        ("  run:a@x ", "run", "a@x", None, "run:a@x", "a@x"),
    ],
)
def test_parse(text, kind, target, epoch, canonical, label):
    spec = PlayerSpec.parse(text)
    assert (spec.kind, spec.target, spec.epoch) == (kind, target, epoch)
    assert str(spec) == canonical
    assert spec.label == label
    assert PlayerSpec.parse(str(spec)) == spec


def test_parse_class_objects():
    spec = PlayerSpec.parse(RandomPlayer)
    assert spec.kind == "class" and spec.player_class is RandomPlayer
    assert spec.label == "RandomPlayer"
    with pytest.raises(MetamonError, match="not a poke-env Player"):
        PlayerSpec.parse(int)


@pytest.mark.parametrize("bad", ["", "   ", "run:", "run:@3", None, 3])
def test_parse_rejects(bad):
    with pytest.raises(MetamonError):
        PlayerSpec.parse(bad)


def test_factory_builds_baselines_with_wrap_and_kwargs():
    wrapped = []

    def wrap(cls):
        wrapped.append(cls)
        return type("Wrapped" + cls.__name__, (cls,), {})

    factory = PlayerFactory("gen1ou", max_concurrent_battles=3)
    player = factory.build("GymLeader", username="Tester", wrap=wrap, seed=5, start_listening=False)
    assert wrapped == [GymLeader]
    assert isinstance(player, GymLeader) and type(player).__name__ == "WrappedGymLeader"
    assert player.username == "Tester"
    assert player._max_concurrent_battles == 3
    assert isinstance(player._team, TeamSet) and player._team is not factory.team  # one set per player
    other = factory.build(RandomPlayer, start_listening=False)
    assert type(other) is RandomPlayer and other.username.startswith("RandomPl")


def test_factory_unknown_names():
    factory = PlayerFactory("gen1ou")
    with pytest.raises(UnknownNameError, match="NotABaseline"):
        factory.build("NotABaseline", start_listening=False)


def test_factory_shared_resources_are_created_once_and_released():
    events = []
    factory = PlayerFactory("gen1ou")
    with factory:
        a = factory.shared("k", lambda: events.append("create") or object(), lambda v: events.append("release"))
        assert factory.shared("k", lambda: events.append("again")) is a
    assert events == ["create", "release"]


def test_factory_teams():
    assert PlayerFactory("gen9randombattle").team is None
    shared = object()
    assert PlayerFactory("gen1ou", team=shared).team is shared
    assert PlayerFactory("gen1ou", team_set=None).team is None


def test_check_spec():
    assert check_spec("GymLeader").kind == "baseline"
    assert check_spec(RandomPlayer).player_class is RandomPlayer
    with pytest.raises(UnknownNameError):
        check_spec("Nope")
    with pytest.raises(UnknownNameError, match="player kind"):
        PlayerFactory("gen1ou").build(PlayerSpec("nokind", "x"))


def test_check_run_spec(tmp_path):
    with pytest.raises(MetamonError, match="holds no policy checkpoint"):
        check_spec(f"run:{tmp_path}")
    weights = tmp_path / "ckpts" / "policy_weights"
    weights.mkdir(parents=True)
    (weights / "policy_epoch_2.safetensors").write_bytes(b"")
    assert check_spec(f"run:{tmp_path}@2").epoch == 2
    with pytest.raises(MetamonError, match=r"no epoch 3 .*\[2\]"):
        check_spec(f"run:{tmp_path}@3")


def test_a_bare_published_model_name_means_the_pretrained_kind():
    assert resolve_spec("SmallRL") == PlayerSpec("pretrained", "SmallRL", None)
    assert resolve_spec("SyntheticRLV2@48") == PlayerSpec("pretrained", "SyntheticRLV2", 48)
    assert canonical_spec("SyntheticRLV2") == "pretrained:SyntheticRLV2"
    assert check_spec("SmallRL").kind == "pretrained"
    # baselines keep their bare names; an unknown bare name stays a baseline and is refused as one
    assert resolve_spec("GymLeader") == PlayerSpec.parse("GymLeader")
    assert resolve_spec("NoSuchPlayer") == PlayerSpec.parse("NoSuchPlayer")
    with pytest.raises(UnknownNameError, match="baseline"):
        check_spec("NoSuchPlayer")
