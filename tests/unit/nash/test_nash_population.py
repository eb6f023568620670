import json

import numpy as np
import pytest

from metamon.nash import Member, NashError, Population
from metamon.nash.population import POPULATION_FORMAT


def _pop():
    return Population([Member("GymLeader", "GymLeader"), Member("run3", "run:/runs/x@3", {"iteration": 0})])


def test_order_index_and_lookup():
    pop = _pop()
    pop.add("BR1", "run:/runs/br1@2", {"iteration": 1})
    assert pop.names == ["GymLeader", "run3", "BR1"]
    assert pop.specs == ["GymLeader", "run:/runs/x@3", "run:/runs/br1@2"]
    assert pop.index("BR1") == 2 and pop[2].name == "BR1" and pop["run3"].metadata == {"iteration": 0}
    assert "BR1" in pop and "nope" not in pop and len(pop) == 3
    assert pop.find_spec("run:/runs/x@3").name == "run3" and pop.find_spec("other") is None
    with pytest.raises(NashError, match="'nope'.*GymLeader, run3, BR1"):
        pop.index("nope")


def test_duplicate_name_refused():
    pop = _pop()
    with pytest.raises(NashError, match="already has a member named 'run3'"):
        pop.add("run3", "run:/elsewhere@1")
    assert len(pop) == 2


@pytest.mark.parametrize("name,spec,metadata,match", [
    ("", "GymLeader", {}, "non-empty"),
    (" a", "GymLeader", {}, "surrounding spaces"),
    ("a", "", {}, "player spec"),
    ("a", "GymLeader", {"x": object()}, "JSON-serialisable"),
])
def test_bad_members_refused(name, spec, metadata, match):
    with pytest.raises(NashError, match=match):
        Member(name, spec, metadata)


def test_save_load_round_trip(tmp_path):
    pop = _pop()
    path = tmp_path / "sub" / "population.json"
    pop.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == POPULATION_FORMAT and [m["name"] for m in data["members"]] == ["GymLeader", "run3"]
    assert Population.load(path) == pop
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_load_errors(tmp_path):
    with pytest.raises(NashError, match="does not exist"):
        Population.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(NashError, match="not valid JSON"):
        Population.load(bad)
    dup = tmp_path / "dup.json"
    members = [{"name": "a", "spec": "x"}, {"name": "a", "spec": "y"}]
    dup.write_text(json.dumps({"format": POPULATION_FORMAT, "members": members}))
    with pytest.raises(NashError, match="dup.json.*'a'"):
        Population.load(dup)


def test_sample_follows_sigma():
    pop = _pop()
    draws = pop.sample([0.25, 0.75], np.random.default_rng(0), size=4000)
    share = sum(m.name == "run3" for m in draws) / len(draws)
    assert abs(share - 0.75) < 0.03
    with pytest.raises(NashError, match="shape"):
        pop.sample([1.0], np.random.default_rng(0), size=1)
