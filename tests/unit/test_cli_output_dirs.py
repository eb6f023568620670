"""The evaluate and generate CLIs refuse output folders they cannot write, and run names that
leave the save directory, with one line on stderr and exit code 2, before starting anything."""

import pytest

from metamon.data import generate
from metamon.rl import evaluate


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    return path


def _one_line_error(capsys, code):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("below", [False, True])
def test_generate_output_dir_that_is_a_file(capsys, afile, below):
    target = afile / "sub" if below else afile
    code = generate.main(["--player", "RandomBaseline", "--num_battles", "1", "--output_dir", str(target),
                          "--no_progress"])
    line = _one_line_error(capsys, code)
    assert "--output_dir" in line and "afile" in line
    assert ("is a file, not a folder" in line) if not below else ("Not a directory" in line)
    assert afile.read_text() == "x"


@pytest.mark.parametrize("flag", ["--save_trajectories_to", "--json_out"])
def test_evaluate_outputs_under_a_file(capsys, afile, flag):
    code = evaluate.main(["--player", "run:nowhere@1", flag, str(afile / "out")])
    line = _one_line_error(capsys, code)
    assert flag in line and "is a file, not a folder" in line


def test_evaluate_json_out_that_is_a_folder(capsys, tmp_path):
    code = evaluate.main(["--player", "run:nowhere@1", "--json_out", str(tmp_path)])
    line = _one_line_error(capsys, code)
    assert "--json_out" in line and "is a folder" in line


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", ".."])
def test_evaluate_run_name_outside_ckpt_dir(capsys, tmp_path, name):
    code = evaluate.main(["--run_name", name, "--ckpt_dir", str(tmp_path)])
    line = _one_line_error(capsys, code)
    assert "--run_name" in line


def test_generate_unwritable_output_dir_for_any_user(capsys, tmp_path, monkeypatch):
    real_access = generate.os.access
    monkeypatch.setattr(generate.os, "access",
                        lambda p, mode, **kw: False if str(p) == str(tmp_path) else real_access(p, mode))
    code = generate.main(["--player", "RandomBaseline", "--num_battles", "1", "--output_dir", str(tmp_path),
                          "--no_progress"])
    assert "is not writable" in _one_line_error(capsys, code)
