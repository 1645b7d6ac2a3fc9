"""ETH-UCY reader: format, errors naming file and line, EqMotion's scene and ego-sample protocol, the real splits."""

import os

import numpy as np
import pytest

from equivar.data import collate_scenes
from equivar.data._ethucy import (
    SCENES,
    ego_samples,
    ethucy_dataset,
    read_trajectory_file,
    scene_sequences,
    split_files,
)


def _row(frame, agent, x, y, width=17):
    if width == 4:
        return f"{frame}\t{agent}\t{x}\t{y}\n"
    cols = [f"{float(frame)}", f"{float(agent)}", "Pedestrian"] + ["-1.0"] * 14
    cols[13], cols[15] = f"{x}", f"{y}"
    return " ".join(cols) + "\n"


def _write(path, presence, step=1, width=17):
    """presence: {agent: frames}; x = frame / 10 + agent, y = -agent."""
    rows = sorted((f, a) for a, frames in presence.items() for f in frames)
    with open(path, "w") as fh:
        for f, a in rows:
            fh.write(_row(f * step, a, f / 10 + a, -a, width))
    return str(path)


PRESENCE = {1: range(0, 20), 2: range(0, 19), 3: range(5, 31)}


@pytest.mark.parametrize(("step", "width"), [(1, 17), (10, 4)])
def test_scenes_need_every_observed_and_future_frame(tmp_path, step, width):
    table = read_trajectory_file(_write(tmp_path / "s.txt", PRESENCE, step, width))
    assert table.frame_step == step
    scenes = scene_sequences(table, past=8, future=12)
    # agent 1 only fits the window ending at frame 7 (frames 0..19); agent 2 misses frame 19;
    # agent 3 (frames 5..30) fits t = 12 .. 18
    assert [(t // step, ids.tolist()) for t, ids, _, _ in scenes] == [(7, [1])] + [(t, [3]) for t in range(12, 19)]
    t, _, obs, fut = scenes[1]
    frames = np.arange(12 - 7, 12 + 13)
    np.testing.assert_allclose(obs[0, :, 0], frames[:8] / 10 + 3)
    np.testing.assert_allclose(fut[0, :, 0], frames[8:] / 10 + 3)
    np.testing.assert_allclose(obs[0, :, 1], -3.0)


def test_ego_samples_nearest_within_radius():
    last = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.5, 0.0]])
    obs = np.repeat(last[:, None], 8, axis=1)
    fut = np.zeros((4, 12, 2))
    got = [s.tolist() for s in ego_samples(obs, fut, max_agents=3, radius=5.0)]
    # agent 0: neighbours 1 (1 m), 2 (3 m); agent 3 is 5.5 m away; agent 3: only agent 1 (4.5 m) within 5 m
    assert got == [[0, 1, 2], [1, 0, 2], [2, 0, 1], [3, 1]]
    assert [s.tolist() for s in ego_samples(obs[:2], fut[:2], max_agents=3)] == [[0, 1], [1, 0]]
    assert [s.tolist() for s in ego_samples(obs, fut, max_agents=1)] == [[0], [1], [2], [3]]


def test_dataset_items_and_batch(tmp_path):
    root = tmp_path / "eth_ucy"
    (root / "eth").mkdir(parents=True)
    _write(root / "eth" / "biwi_eth.txt", {1: range(0, 20), 4: range(0, 20)})
    ds = ethucy_dataset(str(root), "eth", "test", max_agents=2, scale=2.0)
    assert len(ds) == 2
    item = ds[1]  # ego agent 4, then agent 1
    frames = np.arange(20)
    np.testing.assert_allclose(item["pos"][0, :, 0].numpy(), (frames[:8] / 10 + 4) / 2)
    np.testing.assert_allclose(item["pos"][1, :, 0].numpy(), (frames[:8] / 10 + 1) / 2)
    np.testing.assert_allclose(item["target"][0, :, 0].numpy(), (frames[8:] / 10 + 4) / 2)
    np.testing.assert_allclose(item["vel"][0, :, 0].numpy(), 0.05)  # finite differences, first copied
    assert item["target_mask"].tolist() == [True, False]
    batch = collate_scenes([ds[0], ds[1]])
    assert batch["pos"].shape == (4, 8, 2) and batch["edge_index"].shape == (2, 4)
    assert batch["edge_attr"].shape == (4, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 2 3\n", r"bad.txt:1: 3 columns"),
        (_row(0, 1, 0.5, 1.0) + _row(1, 1, "abc", 1.0), r"bad.txt:2: coordinate 'abc' is not a number"),
        (
            _row(0, 1, 0.5, 1.0) + "\n" + _row(0, 1, 0.7, 1.0),
            r"bad.txt:3: agent 1 appears twice in frame 0 \(also line 1\)",
        ),
        (_row(0, 1, 0.5, 1.0) + _row(1.5, 1, 0.5, 1.0), r"bad.txt:2: frame id '1.5' is not an integer"),
        (_row(0, 1, "nan", 1.0), r"bad.txt:1: coordinate \(nan, 1.0\) is not finite"),
        (_row(0, 1, 0.5, 1.0) + _row(1, 1, 0.5, 1.0, width=4), r"bad.txt:2: 4 columns where earlier rows have 17"),
        ("\n\n", r"bad.txt: no trajectory rows"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_trajectory_file(str(path))


def test_bad_split_arguments(tmp_path):
    with pytest.raises(ValueError, match="'lyon'"):
        split_files(str(tmp_path), "lyon", "train")
    with pytest.raises(FileNotFoundError, match="scene folder"):
        split_files(str(tmp_path), "eth", "train")
    with pytest.raises(FileNotFoundError, match="no such trajectory file"):
        read_trajectory_file(str(tmp_path / "missing.txt"))


def test_real_splits(shared_data):
    root = os.path.join(shared_data, "eth_ucy")
    # held-out test sets: one sample per agent with 20 consecutive frames, the sizes the field evaluates on
    sizes = {scene: len(ethucy_dataset(root, scene, "test")) for scene in SCENES}
    assert sizes == {"eth": 364, "hotel": 1197, "univ": 24334, "zara1": 2356, "zara2": 5910}
    files = [os.path.basename(f) for f in split_files(root, "univ", "train")]
    assert "students001_train.txt" not in files and "uni_examples_train.txt" in files and len(files) == 6
    ds = ethucy_dataset(root, "zara1", "test")
    item = ds[0]
    assert 1 <= item["pos"].shape[0] <= 3 and item["pos"].shape[1:] == (8, 2) and item["target"].shape[1:] == (12, 2)
    # consecutive frames at 2.5 fps: pedestrians move less than 2.5 m per frame
    steps = np.linalg.norm(np.diff(np.concatenate([item["pos"], item["target"]], 1), axis=1), axis=-1)
    assert float(steps.max()) < 2.5
