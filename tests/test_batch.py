"""`python -m fom_pipeline batch JOBS` run locally, as a real process on generated media: the good
rows' outputs move as their drivers (tracking model), the broken rows fail in the single command's
words without stopping the others, the exit status says so, a rerun skips finished jobs without
touching them, and --overwrite redoes them."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from batch_scene import FLAGS, FRAMES, GOOD, assert_follows, frames_of, make_scene, read_results, run_batch
from kit import run_cli


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    scene = make_scene(tmp_path_factory.mktemp("batch"))
    scene["first"] = run_batch(scene)
    scene["first_results"] = read_results(scene)
    return scene


def _single_error(scene: dict, *flags) -> str:
    """What the single command says for the same job (its `error: ...` line, without the prefix)."""
    res = run_cli("--weight_path", scene["weights"], *FLAGS, "--quiet", *flags)
    assert res.returncode in (1, 2), res.stderr
    return res.stderr.strip().splitlines()[-1].removeprefix("error: ").removesuffix(" (see --help)")


def test_good_rows_follow_their_drivers_broken_rows_fail_alone(scene):
    res = scene["first"]
    assert res.returncode == 1, res.stderr  # some jobs failed
    assert re.search(r"batch: 4 ok, 0 skipped \(done before\), 3 failed of 7 jobs in [\d.]+ s", res.stdout)
    results = scene["first_results"]
    assert sorted(results) == list(range(1, 8))
    for number in GOOD:
        row = results[number]
        assert (row["status"], row["frames"], row["error"]) == ("ok", FRAMES, None), row
        assert row["output"] == os.fspath(scene["folder"] / GOOD[number][2])
        assert_follows(scene, number)
    for number in (3, 5, 7):
        assert results[number]["status"] == "failed" and results[number]["error"], results[number]
        assert f"job {number} (line {number + 1}) failed: {results[number]['error']}" in res.stderr
    assert not any((scene["folder"] / "out").glob("*partial*"))  # nothing half-written
    assert {p.name for p in (scene["folder"] / "out").iterdir()} == {os.path.basename(g[2]) for g in GOOD.values()}


def test_failures_are_worded_as_the_single_command_words_them(scene):
    folder, results = scene["folder"], scene["first_results"]
    pair = scene["faces"]["pair"]
    missing = _single_error(scene, "--source_image", folder / "missing.png", "--driving_video",
                            folder / "sway_x.mp4", "--faces", pair, "--output", folder / "single_out")
    assert results[3]["error"] == missing and "source image not found" in missing
    ratio = _single_error(scene, "--source_image", folder / "pair.png", "--driving_video", folder / "sway_y.mp4",
                          "--faces", pair, "--ratio", "5", "--output", folder / "single_out")
    assert results[5]["error"] == ratio and "ratio" in ratio
    broken = _single_error(scene, "--source_image", folder / "single.png", "--driving_video",
                           folder / "broken.mp4", "--faces", scene["faces"]["single"], "--output", folder / "single_out")
    assert results[7]["error"] == broken


def test_model_loaded_once_and_each_driver_read_once(scene):
    """The first job loads the model; each driver's keypoints are computed by its first job only."""
    results = scene["first_results"]
    assert [n for n in GOOD if "load_s" in results[n]] == [1]
    assert [n for n in GOOD if "keypoints_s" in results[n]] == [1, 4]
    assert all(results[n]["render_s"] > 0 for n in GOOD)


def test_rerun_skips_finished_jobs_without_rewriting_and_overwrite_redoes_them(scene):
    outputs = {n: scene["folder"] / GOOD[n][2] for n in GOOD}
    before = {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in outputs.items()}
    frames = {n: frames_of(p) for n, p in outputs.items()}
    again = run_batch(scene)
    assert again.returncode == 1, again.stderr  # the broken rows still fail
    assert "batch: 0 ok, 4 skipped (done before), 3 failed of 7 jobs" in again.stdout
    results = read_results(scene)
    assert {n for n, row in results.items() if row["status"] == "skipped"} == set(GOOD)
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in outputs.items()} == before

    redo = run_batch(scene, "--overwrite")
    assert redo.returncode == 1 and "batch: 4 ok, 0 skipped (done before), 3 failed" in redo.stdout, redo.stderr
    for n, path in outputs.items():
        assert path.stat().st_ino != before[n][0]  # a new file, put in place atomically
        assert np.abs(frames_of(path).astype(int) - frames[n]).max() <= 1


def test_bad_jobs_file_or_flag_stops_before_any_job(tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("source_image,driving_video,output,ratoi\na.png,b.mp4,c.mp4,0.3\n")
    res = run_cli("batch", jobs)
    assert res.returncode == 2 and "unknown column 'ratoi'" in res.stderr and "ratio" in res.stderr
    res = run_cli("batch", tmp_path / "nope.csv")
    assert res.returncode == 2 and f"jobs file not found: {tmp_path / 'nope.csv'}" in res.stderr
    jobs.write_text("source_image,driving_video,output\na.png,b.mp4,c.mp4\n")
    res = run_cli("batch", jobs, "--ratio", "7")
    assert res.returncode == 2 and "--ratio" in res.stderr and "error:" in res.stderr
    assert not (tmp_path / "jobs.results.jsonl").exists()


def test_jsonl_rows_cells_override_the_batch_flags(tmp_path):
    """JSON Lines: true/false/null cells; a cell overrides a batch flag (also turning an on/off flag off),
    null keeps it; relative paths are from the jobs file's folder, an output file splits into folder+name."""
    from fom_pipeline.batch.jobs import defaults_from_flags, read_rows, row_argv

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"source_image": "a.png", "driving_video": "d.mp4", "output": "o/x.mp4", "ratio": null}\n\n'
                    '{"source_image": "b.png", "driving_motion": "m.safetensors", "output": "o/y.mp4", '
                    '"relative": false, "ratio": 0.6, "color_match": "rgb"}\n')
    rows = read_rows(jobs)
    defaults = defaults_from_flags(["--relative", "--ratio", "0.5"])
    first, second = (row_argv(row, defaults, tmp_path) for row in rows)
    assert [r.line for r in rows] == [1, 3]
    assert first == ["--relative", "--ratio", "0.5", "--source_image", str(tmp_path / "a.png"), "--driving_video",
                     str(tmp_path / "d.mp4"), "--output", str(tmp_path / "o"), "--filename", "x.mp4"]
    assert "--relative" not in second and second[second.index("--ratio") + 1] == "0.6"
    assert second[second.index("--color_match") + 1] == "rgb"
    # a source video is a path like the photo; --audio's words stay words, a sound file is a path
    jobs.write_text('{"source_video": "v.mp4", "driving_video": "d.mp4", "output": "x.mp4", "audio": "driving"}\n'
                    '{"source_video": "v.mp4", "driving_video": "d.mp4", "output": "y.mp4", "audio": "voice.wav"}\n')
    words, sound = (row_argv(row, {}, tmp_path) for row in read_rows(jobs))
    assert words[words.index("--source_video") + 1] == str(tmp_path / "v.mp4")
    assert words[words.index("--audio") + 1] == "driving"
    assert sound[sound.index("--audio") + 1] == str(tmp_path / "voice.wav")
    jobs.write_text('{"source_image": "a.png", "driving_video": "d.mp4", "output": "x.mp4", "relative": "maybe"}\n')
    with pytest.raises(ValueError, match="column relative: expected true or false, got 'maybe'"):
        row_argv(read_rows(jobs)[0], {}, tmp_path)


def test_ray_missing_is_one_line_that_says_how_to_install_it(scene, tmp_path):
    """--ray where Ray is not installed (an optional extra): one line naming the install, no job run."""
    hidden = tmp_path / "no_ray"
    hidden.mkdir()
    (hidden / "ray.py").write_text('raise ImportError("No module named \'ray\'")\n')  # shadows an installed Ray
    before = (scene["folder"] / "jobs.results.jsonl").read_text()
    res = run_batch(scene, "--ray", "--overwrite",
                    env={"PYTHONPATH": os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))})
    assert res.returncode in (1, 2), res.stderr
    assert res.stderr.strip().splitlines()[-1] == ("error: --ray needs Ray: pip install 'fom-multiface[ray]' "
                                                   "(or pip install 'ray>=2.60,<3')")
    assert "Traceback" not in res.stderr
    assert (scene["folder"] / "jobs.results.jsonl").read_text() == before  # no job ran
