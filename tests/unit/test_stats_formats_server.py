
import pytest

from metamon.errors import ServerError, UnknownNameError
from metamon.formats import check_format, is_random_battle, known_formats
from metamon.names import format_to_gen, move_name, pokemon_name
from metamon.server import check_server, find_free_port, parse_server_url, port_in_use, server_answers
from metamon.stats import wilson_interval


def test_wilson_interval_known_values():
    # 8/10 at z=1.96: centre = (0.8 + 0.19208)/1.38416 = 0.716723, half = 1.96*sqrt(0.016+0.0009604)/1.38416
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490162, abs=1e-5) and hi == pytest.approx(0.943318, abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and 0 < hi < 0.08
    lo, hi = wilson_interval(50, 50)
    assert hi == 1.0 and lo > 0.92


def test_formats():
    assert is_random_battle("gen9randombattle") and is_random_battle("gen1randombattle")
    assert not is_random_battle("gen1ou") and not is_random_battle("gen9ou")
    assert {"gen1ou", "gen2ou", "gen3ou", "gen4ou", "gen9ou"} <= set(known_formats())
    with pytest.raises(UnknownNameError, match="battle format 'gen9oo'.*gen9ou"):
        check_format("gen9oo")


def test_names():
    assert format_to_gen("gen9ou") == 9 and format_to_gen("gen10foo") == 10
    with pytest.raises(ValueError, match="'ou'"):
        format_to_gen("ou")
    assert move_name("Hidden Power Fire 60") == "hiddenpower"
    assert move_name("Vice Grip") == "visegrip" and move_name("return102") == "return"
    assert pokemon_name("Rotom-Wash") == "rotomwash" and pokemon_name("Porygon2") == "porygon2"


@pytest.mark.parametrize("given,expected", [
    (8000, ("127.0.0.1", 8000)),
    ("8123", ("127.0.0.1", 8123)),
    ("localhost:9000", ("localhost", 9000)),
    ("ws://127.0.0.1:8000/showdown/websocket", ("127.0.0.1", 8000)),
    ("http://127.0.0.1:8001", ("127.0.0.1", 8001)),
])
def test_parse_server_url(given, expected):
    assert parse_server_url(given) == expected


def test_bad_server_url_and_unreachable_server():
    with pytest.raises(ServerError, match="nonsense"):
        parse_server_url("nonsense")
    port = find_free_port()
    assert not port_in_use(port) and not server_answers(port, timeout=0.5)
    with pytest.raises(ServerError, match=f"127.0.0.1:{port}.*make server"):
        check_server(port, timeout=0.5)
