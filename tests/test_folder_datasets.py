"""Bring your own data: the ``folder`` dataset of every family on generated layouts (random images of mixed sizes,
modes and formats), every refusal naming its problem and path, ``protolab data check`` and its exit codes, the
runner's check before any kernel, and every family's notebook run from a folder in the smoke profile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from protolab.data import (DatasetFormatError, DatasetNotFoundError, check_dataset, check_zsl_dataset, load_fewshot,
                           load_image_folder, load_in_distribution, load_reid, load_zsl)
from protolab.data.folders import check_folder, detect_kind, load_feature_folder
from protolab.delta.features import folder_space
from protolab.runner import cli
from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import ParameterError
from tests.layouts import (write_fewshot_folder, write_mixed_images, write_reid_folder, write_uncertainty_folder,
                           write_zsl_folder)


def test_fewshot_folder_loads_disjoint_splits_of_mixed_images_decoded_once(tmp_path):
    root = write_fewshot_folder(tmp_path / "fewshot", classes=3, per_class=4)
    splits = load_fewshot("folder", root, image_size=20)
    assert [part.class_names for part in splits] == [[f"{split}_{k}" for k in range(3)]
                                                     for split in ("train", "val", "test")]
    for part in splits:
        assert part.images.dtype == torch.uint8 and part.images.shape == (12, 3, 20, 20)  # mixed modes: RGB
        assert part.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and "decoded cache" in part.description
    image, label = splits.val[5]
    assert image.shape == (3, 20, 20) and image.dtype == torch.float32 and label == 1
    grey = load_fewshot("folder", write_fewshot_folder(tmp_path / "grey", classes=2, per_class=2, grey=True),
                        image_size=16)
    assert grey.train.images.shape == (4, 1, 16, 16)  # every image grey: one channel


def test_uncertainty_folder_shares_train_classes_and_ood_folders_take_its_channels(tmp_path):
    root = write_uncertainty_folder(tmp_path / "digits", classes=3, per_class=4)
    shutil.rmtree(root / "test" / "class_2")  # a test split may lack a class
    train, test = load_in_distribution("folder", root, image_size=12)
    assert train.class_names == test.class_names == ["class_0", "class_1", "class_2"]
    assert test.labels.tolist() == [0] * 4 + [1] * 4 and train.images.shape == (12, 3, 12, 12)
    write_mixed_images(tmp_path / "noise" / "deep" / "er", 5, first_seed=7)
    ood = load_image_folder(tmp_path / "noise", image_size=12, count=3, seed=0, channels=1)
    assert ood.images.shape == (3, 1, 12, 12) and ood.class_names == ["er"]
    again = load_image_folder(tmp_path / "noise", image_size=12, count=3, seed=0, channels=1)
    assert [p.name for p in again.paths] == [p.name for p in ood.paths]  # drawn with the seed


def test_reid_folder_is_found_below_data_root_with_ids_and_cameras(tmp_path):
    folder = write_reid_folder(tmp_path / "data")
    splits = load_reid("folder", tmp_path / "data", image_size=(16, 8))
    assert len(splits.train) == 12 and splits.train.n_classes == 4 and splits.train.images.shape[1:] == (3, 16, 8)
    assert splits.query.person_ids.tolist() == [101, 102] and splits.query.domains.tolist() == [1, 2]
    assert sorted(splits.gallery.person_ids.tolist()) == [-1, 0, 101, 101, 102]
    assert splits.query.class_names == splits.gallery.class_names == ["0101", "0102", "0000", "-1"]
    assert str(folder) in splits.train.description and detect_kind(tmp_path / "data") == "reid"


def test_zsl_folder_reads_the_plain_layout_into_the_xlsa17_type(tmp_path):
    root = write_zsl_folder(tmp_path / "animals")
    data = load_zsl("folder", root)
    assert data.class_names == [f"animal_{c}" for c in range(8)] and data.feature_dim == 16
    assert data.train_classes.tolist() == [0, 1, 2, 3] and data.val_classes.tolist() == [4, 5]
    assert data.seen_classes.tolist() == list(range(6)) and data.unseen_classes.tolist() == [6, 7]
    assert len(data.test_unseen) == 24 and len(data.test_seen) == 18 and len(data.trainval) == 54
    assert torch.allclose(data.attributes.norm(dim=1), torch.ones(8))
    written = np.loadtxt(root / "attributes.csv", delimiter=",", skiprows=1, usecols=range(1, 7))
    assert np.allclose(data.original_attributes.numpy(), written, atol=1e-4)
    features = np.load(root / "features.npy")
    assert np.allclose(data.test_unseen.features.numpy(), features[data.test_unseen.indices.numpy()], atol=1e-6)
    assert data.test_unseen.labels.tolist() == [6] * 12 + [7] * 12


def test_feature_matrices_and_image_folders_are_delta_spaces(tmp_path):
    root = write_zsl_folder(tmp_path / "animals")
    points, labels, _ = load_feature_folder(root)
    assert points.shape == (96, 16) and labels.tolist() == np.repeat(np.arange(8), 12).tolist()
    np.save(tmp_path / "bare.npy", np.arange(12.0).reshape(4, 3))
    points, labels, text = folder_space(tmp_path / "bare.npy")
    assert points.tolist() == np.arange(12.0).reshape(4, 3).tolist() and labels.tolist() == [0] * 4
    points, labels, text = folder_space(write_fewshot_folder(tmp_path / "fewshot", classes=2, per_class=3),
                                        image_size=8)
    assert points.shape == (6, 3 * 8 * 8) and labels.tolist() == [0, 0, 0, 1, 1, 1] and "fewshot folder" in text


def _corrupt(root: Path) -> Path:
    bad = sorted((root / "train" / "train_1").iterdir())[0]
    bad.write_bytes(b"not an image")
    return bad


def _overlap(root: Path) -> str:
    shutil.copytree(root / "train" / "train_2", root / "test" / "train_2")
    return "the train and test splits share 1 class(es): train_2"


def _missing_split(root: Path) -> str:
    shutil.rmtree(root / "val")
    return f"missing split folder {root / 'val'}"


def _empty_class(root: Path) -> Path:
    (root / "val" / "val_9").mkdir()
    return root / "val" / "val_9"


def _unmatched_query(root: Path) -> str:
    folder = root / "cameras" / "mine"
    shutil.copy(next((folder / "query").iterdir()), folder / "query" / "0777_c3_000.png")
    return "1 query identit(ies) absent from the gallery (bounding_box_test/): 777"


def _bad_name(root: Path) -> Path:
    folder = root / "cameras" / "mine" / "bounding_box_train"
    return Path(shutil.copy(next(folder.iterdir()), folder / "person7_cam2.png"))


def _short_attribute_row(root: Path) -> str:
    lines = (root / "attributes.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # animal_2 loses an attribute
    (root / "attributes.csv").write_text("\n".join(lines) + "\n")
    return "rows 4 do not have the header's 7 fields"


def _missing_attribute_row(root: Path) -> str:
    lines = (root / "attributes.csv").read_text().splitlines()
    (root / "attributes.csv").write_text("\n".join(lines[:-1]) + "\n")  # animal_7 has images, no row
    return "has no row for classes of labels.csv: animal_7"


def _val_shares_train_classes(root: Path) -> str:
    splits = json.loads((root / "splits.json").read_text())
    splits["val"].append(splits["train"].pop())
    (root / "splits.json").write_text(json.dumps(splits))
    return "train and val share classes"


def _unseen_in_train(root: Path) -> str:
    splits = json.loads((root / "splits.json").read_text())
    splits["train"].append(95)  # an image of animal_7, unseen
    (root / "splits.json").write_text(json.dumps(splits))
    return "'train' holds images of unseen classes animal_7"


def _test_class_unknown_to_train(root: Path) -> str:
    shutil.move(root / "train" / "class_2", root / "elsewhere")
    return "test has 1 class(es) that train lacks: class_2"


REFUSALS = {  # kind, layout writer, breaking it (returns the path or words the message must hold), family loader
    "corrupt image": ("fewshot", write_fewshot_folder, _corrupt, load_fewshot),
    "overlapping splits": ("fewshot", write_fewshot_folder, _overlap, load_fewshot),
    "empty class": ("fewshot", write_fewshot_folder, _empty_class, load_fewshot),
    "missing split": ("fewshot", write_fewshot_folder, _missing_split, load_fewshot),
    "test class outside train": ("uncertainty", write_uncertainty_folder, _test_class_unknown_to_train,
                                 load_in_distribution),
    "query without gallery match": ("reid", write_reid_folder, _unmatched_query, load_reid),
    "file name not Market-1501": ("reid", write_reid_folder, _bad_name, load_reid),
    "short attribute row": ("zsl", write_zsl_folder, _short_attribute_row, load_zsl),
    "class without attribute row": ("zsl", write_zsl_folder, _missing_attribute_row, load_zsl),
    "val classes in train": ("zsl", write_zsl_folder, _val_shares_train_classes, load_zsl),
    "unseen image in train": ("zsl", write_zsl_folder, _unseen_in_train, load_zsl),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_each_broken_layout_is_refused_naming_the_problem(tmp_path, case):
    kind, write, breaking, load = REFUSALS[case]
    root = tmp_path / "data"
    write(root)
    assert check_folder(kind, root).problems == []
    expected = str(breaking(root))
    report = check_folder(kind, root)
    assert len(report.problems) == 1 and expected in report.problems[0], report
    with pytest.raises(DatasetFormatError, match="1 problem") as refused:
        load("folder", root)
    assert expected in str(refused.value) and str(root) in str(refused.value)


def test_every_problem_is_listed_at_once_and_the_cli_exits_2(tmp_path, capsys):
    root = write_fewshot_folder(tmp_path / "data", per_class=3)
    assert cli.main(["data", "check", "fewshot", str(root), "--shot", "1", "--query", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"fewshot folder {root}: valid\n")
    bad, empty = _corrupt(root), _empty_class(root)
    shutil.rmtree(root / "test")
    assert cli.main(["data", "check", "fewshot", str(root), "--shot", "1", "--query", "3"]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"fewshot folder {root}: 5 problem(s)\n") and out.count("\n  - ") == 5
    for words in (f"unreadable image {bad}", f"empty class folder(s): {empty}", f"missing split folder {root / 'test'}",
                  "train has 5 class(es) with fewer images than shot + query = 4: train_0 (3)",
                  "val has 5 class(es) with fewer images than shot + query = 4: val_0 (3)"):
        assert words in out.split("problems:")[1]
    with pytest.raises(DatasetNotFoundError, match="data_root is empty"):
        check_dataset("folder", "", kind="fewshot")


def test_cli_summarises_a_valid_folder_of_each_kind(tmp_path, capsys):
    layouts = {"fewshot": write_fewshot_folder(tmp_path / "fs", per_class=2),
               "uncertainty": write_uncertainty_folder(tmp_path / "unc", per_class=2),
               "reid": write_reid_folder(tmp_path / "reid").parents[1], "zsl": write_zsl_folder(tmp_path / "zsl")}
    np.save(tmp_path / "points.npy", np.ones((5, 2)))
    layouts["features"] = tmp_path / "points.npy"
    write_mixed_images(tmp_path / "ood", 3)
    summaries = {"fewshot": ["train: 5 classes, 10 images; smallest class 'train_0' (2 images)", "splits: disjoint",
                             "image sizes (W×H): ", "modes: "],
                 "uncertainty": ["test: 3 classes, 6 images", "OOD ood: 3 images"],
                 "reid": ["query (query/): 2 images, 2 identities", "cameras [1, 2, 3]", "train and test identities: "
                          "disjoint"],
                 "zsl": ["features: 96 images × 16 dims; attributes: 8 classes × 6", "4 train + 2 val seen, 2 unseen"],
                 "features": ["features: 5 points × 2 dims; no labels.csv"]}
    for kind, root in layouts.items():
        assert cli.main(["data", "check", kind, str(root), "--ood", str(tmp_path / "ood")]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{kind} folder {root}: valid") and all(words in out for words in summaries[kind]), out
    assert cli.main(["data", "check", "zsl", str(tmp_path / "nowhere")]) == 2
    assert "missing features.npy, labels.csv, attributes.csv, splits.json" in capsys.readouterr().out


def test_the_runner_checks_a_folder_in_full_before_any_kernel(tmp_path):
    root = write_fewshot_folder(tmp_path / "data", per_class=4)  # smoke: shots [1, 5] + query 3 need 8 per class
    with pytest.raises(ParameterError) as refused:
        run_notebooks(["fewshot_tables", "poincare_uncertainty"], profile="smoke",
                      overrides={"dataset": "folder", "data_root": str(root), "ood_folders": str(tmp_path / "none")},
                      out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs")
    message = str(refused.value)
    assert "fewshot_tables: dataset='folder'" in message and "fewer images than shot + query = 8" in message
    assert "poincare_uncertainty: dataset='folder'" in message and "test has 5 class(es) that train lacks" in message
    assert f"ood_folders: missing folder of images {tmp_path / 'none'}" in message
    assert not (tmp_path / "runs").exists()
    with pytest.raises(DatasetFormatError, match="missing features.npy"):
        check_zsl_dataset("folder", root)


@pytest.mark.notebook
def test_every_family_runs_its_notebook_from_a_folder_in_the_smoke_profile(tmp_path):
    # One folder holds the few-shot splits, a re-ID folder two levels below and the zero-shot table (δ reads the
    # features); the uncertainty folder is another (its test classes are train's, unlike few-shot's).
    root = write_fewshot_folder(tmp_path / "mine", per_class=4)
    write_reid_folder(root)
    write_zsl_folder(root)
    digits = write_uncertainty_folder(tmp_path / "digits", per_class=6)
    write_mixed_images(tmp_path / "noise", 6, first_seed=300)
    common = {"out_dir": tmp_path / "figures", "runs_dir": tmp_path / "runs", "timeout": 300, "jobs": 2}
    results = run_notebooks(["fewshot_tables", "reid_embeddings", "ipn_gzsl", "consistency_study",
                             "delta_hyperbolicity"], profile="smoke", overrides={
        "dataset": "folder", "data_root": str(root), "shots": "1", "train_way": "5", "val_identities": "1",
        "n_way": "4", "episode_unseen": "1", "datasets": "folder"}, **common)
    results += run_notebooks(["poincare_uncertainty"], profile="smoke", overrides={
        "dataset": "folder", "data_root": str(digits), "ood_datasets": "[]", "ood_folders": str(tmp_path / "noise"),
        "normalise_ood": "false"},  # colour images: MNIST's size normalisation does not apply
        **common)
    assert {result.notebook: result.status for result in results} == dict.fromkeys(
        ["fewshot_tables", "reid_embeddings", "ipn_gzsl", "consistency_study", "delta_hyperbolicity",
         "poincare_uncertainty"], "ok"), [(result.failing_cell, result.error) for result in results]
    figures = tmp_path / "figures"
    for notebook, table, words in [("fewshot_tables", "accuracy", "folder mine test (5 classes"),
                                   ("reid_embeddings", "results", "re-ID folder query (2 images"),
                                   ("ipn_gzsl", "gzsl", "folder mine: 8 classes (6 seen / 2 unseen)"),
                                   ("consistency_study", "claims", "folder mine: 8 classes"),
                                   ("delta_hyperbolicity", "delta_rel", "features.npy of"),
                                   ("poincare_uncertainty", "separation", "folder digits train (3 classes")]:
        sidecar = json.loads((figures / f"{notebook}__{table}.json").read_text())
        assert sidecar["dataset"]["name"] == "folder" and words in sidecar["dataset"]["description"], notebook
    assert pd.read_csv(figures / "poincare_uncertainty__separation.csv").ood.unique().tolist() == ["noise"]
    assert pd.read_csv(figures / "delta_hyperbolicity__delta_rel.csv").space.tolist() == ["folder"]
