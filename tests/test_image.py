"""Image classification recipe: real tiny ViT/ResNet checkpoints, a real imagefolder, the real Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from image_fixtures import COLOURS, colour_image, image_config, make_image_folder, save_tiny_resnet, save_tiny_vit

from hfft.config import load_config
from hfft.errors import ConfigError, DataError
from hfft.outputs import load_run

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "image"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images") / "train")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_vit(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_resnet(tmp_path_factory.mktemp("tiny-resnet"))


@pytest.fixture(scope="module")
def vit_lora_run(tiny_vit: Path, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from hfft import ImageClassification

    recipe = ImageClassification(image_config(tiny_vit, folder, tmp_path_factory.mktemp("runs") / "vit-lora"))
    return recipe, recipe.train()


def sample_paths(folder: Path) -> list[str]:
    return [str(folder / name / f"{i}.png") for name in COLOURS for i in range(2)] + [
        str(folder / "green" / "gray.png"),
        str(folder / "red" / "rgba.png"),
    ]


def logits(recipe, inputs: list) -> torch.Tensor:
    recipe.model.eval()
    with torch.no_grad():
        return recipe.model(**recipe.prepare_inputs(inputs)).logits


def test_lora_run_learns_reports_corrupt_file_and_reloads(vit_lora_run: tuple, folder: Path) -> None:
    recipe, metrics = vit_lora_run
    out = recipe.output_dir
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_accuracy"] == metrics["eval_accuracy"] >= 0.8  # chance is 1/3
    losses = [e["loss"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    report = json.loads((out / "data_report.json").read_text())["train"]
    assert report["dropped"] == {"corrupt_image": 1}
    assert [Path(e).name for e in report["examples"]] == ["broken.jpg"]
    assert report["notes"]["image_modes"]["L"] == 1 and report["notes"]["image_modes"]["RGBA"] == 1
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "model.safetensors").is_file()  # merged

    paths = sample_paths(folder)
    loaded = load_run(out)
    assert torch.equal(logits(recipe, paths), logits(loaded, paths))
    predictions = loaded.predict(paths[:6])
    assert [p["label"] for p in predictions] == ["red", "red", "green", "green", "blue", "blue"]


def test_resnet_lora_with_mixup_cutmix_saves_batchnorm_and_reloads(tiny_resnet: Path, folder: Path, tmp_path) -> None:
    from hfft import ImageClassification
    from hfft.losses import SoftTargetLoss

    config = image_config(tiny_resnet, folder, tmp_path / "run", augmentation={"mixup_alpha": 0.4, "cutmix_alpha": 1.0})
    recipe = ImageClassification(config)
    metrics = recipe.train()
    assert np.isfinite(metrics["train_loss"]) and metrics["eval_accuracy"] > 0.5
    peft_config = recipe.model.peft_config["default"]
    assert "convolution" in peft_config.target_modules
    assert any("normalization" in name for name in peft_config.modules_to_save)  # running stats travel along
    paths = sample_paths(folder)
    assert torch.equal(logits(recipe, paths), logits(load_run(recipe.output_dir), paths))

    loss = SoftTargetLoss(num_labels=3)
    outputs = {"logits": torch.randn(4, 3)}
    hard = torch.tensor([0, 2, 1, 1])
    expected = torch.nn.functional.cross_entropy(outputs["logits"], hard)
    assert torch.allclose(loss(outputs, hard), expected)
    soft = torch.nn.functional.one_hot(hard, 3).float()
    assert torch.allclose(loss(outputs, soft, num_items_in_batch=torch.tensor(24)), expected / 2)  # 2 accumulated


def build_trainer(model: Path, train: Path, out: Path, **extra) -> tuple:
    """A recipe, its Trainer and the encoded splits, without training (the data flow as `train()` sets it up)."""
    from hfft import ImageClassification

    recipe = ImageClassification(image_config(model, train, out, tuning={"method": "full"}, **extra))
    recipe.processor = recipe.load_processor(str(model))
    encoded = {name: recipe.encode(ds, name) for name, ds in recipe.load_splits().items()}
    recipe.model = recipe.build_model(str(model))
    return recipe, recipe.build_trainer(recipe.training_arguments(), encoded), encoded


def test_augmentation_only_in_training_batches(tiny_vit: Path, folder: Path, tmp_path) -> None:
    aug = {"policy": "randaugment", "mixup_alpha": 0.4}
    recipe, trainer, encoded = build_trainer(tiny_vit, folder, tmp_path / "run", augmentation=aug)
    rows, val_rows = encoded["train"][:4], encoded["validation"][:4]
    plain_view = recipe.eval_transform(rows)["pixel_values"]
    train_rows = [trainer.train_dataset[i] for i in range(4)]
    eval_rows = [trainer.eval_dataset[i] for i in range(4)]
    for i in range(4):
        assert train_rows[i]["pixel_values"].shape == plain_view[i].shape == (3, 32, 32)
        assert not torch.equal(train_rows[i]["pixel_values"], plain_view[i])  # augmented
        assert torch.equal(eval_rows[i]["pixel_values"], recipe.eval_transform(val_rows)["pixel_values"][i])
    np.random.seed(1)
    first = recipe.train_transform(rows)["pixel_values"]
    assert not torch.equal(first, recipe.train_transform(rows)["pixel_values"])  # a new view each draw ...
    np.random.seed(1)
    assert torch.equal(first, recipe.train_transform(rows)["pixel_values"])  # ... from numpy's seeded RNG

    train_batch = trainer.data_collator(train_rows)
    eval_batch = trainer.data_collator(eval_rows)
    assert train_batch["labels"].shape == (4, 3) and torch.allclose(train_batch["labels"].sum(-1), torch.ones(4))
    assert eval_batch["labels"].dtype == torch.long and eval_batch["labels"].shape == (4,)
    assert trainer.compute_loss_func is not None

    plain, trainer, encoded = build_trainer(tiny_vit, folder, tmp_path / "plain", regularization={"augment": False})
    expected = plain.eval_transform(encoded["train"][:1])["pixel_values"][0]
    assert torch.equal(trainer.train_dataset[0]["pixel_values"], expected)
    assert "hfft_mix" not in trainer.train_dataset[0] and trainer.compute_loss_func is None


def test_vit_runs_at_another_input_size(tiny_vit: Path, folder: Path, tmp_path) -> None:
    recipe, trainer, _ = build_trainer(tiny_vit, folder, tmp_path / "run", preprocessing={"image_size": 16})
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert batch["pixel_values"].shape == (2, 3, 16, 16) and batch["interpolate_pos_encoding"] is True
    assert trainer.model(**batch).logits.shape == (2, 3)
    assert len(recipe.predict(sample_paths(folder))) == 8


def test_too_many_corrupt_files_fail_with_the_file_named(tiny_vit: Path, folder: Path, tmp_path) -> None:
    from hfft import ImageClassification

    recipe = ImageClassification(image_config(tiny_vit, folder, tmp_path / "run", data={"max_bad_fraction": 0.01}))
    with pytest.raises(DataError, match=r"1 of 45 rows are corrupt.*broken\.jpg"):
        recipe.load_splits()


def test_array_dataset_with_img_and_fine_label_columns(tiny_vit: Path, tmp_path) -> None:
    import datasets

    from hfft import ImageClassification

    rng = np.random.default_rng(0)
    labels = [name for name in COLOURS for _ in range(4)]
    gray = [colour_image(c, rng).mean(-1).astype(np.uint8) for c in COLOURS.values() for _ in range(4)]
    chw_float = [(colour_image(c, rng) / 255.0).transpose(2, 0, 1) for c in COLOURS.values() for _ in range(4)]
    datasets.Dataset.from_dict({"img": gray, "fine_label": labels}).save_to_disk(str(tmp_path / "train"))
    datasets.Dataset.from_dict({"img": chw_float, "fine_label": labels}).save_to_disk(str(tmp_path / "test"))
    config = image_config(tiny_vit, tmp_path / "train", tmp_path / "run", data={"test": str(tmp_path / "test")})
    recipe = ImageClassification(config)
    recipe.processor = recipe.load_processor(str(tiny_vit))
    splits = recipe.load_splits()
    assert recipe.columns == {"input": "img", "label": "fine_label"}
    for split in ("train", "test"):
        batch = recipe.eval_transform(splits[split][:4])
        assert batch["pixel_values"].shape == (4, 3, 32, 32)
    red = recipe.labels.names.index("red")
    test_red = recipe.eval_transform(splits["test"][[i for i, y in enumerate(splits["test"]["labels"]) if y == red]])
    assert (test_red["pixel_values"][:, 0] > test_red["pixel_values"][:, 2]).float().mean() > 0.9  # RGB order kept

    bad = tmp_path / "numbers"
    datasets.Dataset.from_dict({"image": [1, 2, 3], "label": [0, 1, 0]}).save_to_disk(str(bad))
    with pytest.raises(DataError, match="expects images"):
        ImageClassification(image_config(tiny_vit, bad, tmp_path / "run2")).load_splits()


def test_csv_of_image_paths_and_parquet_of_embedded_images(tiny_vit: Path, folder: Path, tmp_path) -> None:
    import datasets
    from PIL import Image

    from hfft import ImageClassification

    paths = [p for p in sorted(folder.glob("*/*")) if p.stem.isdigit()]
    (tmp_path / "train.csv").write_text("image,label\n" + "".join(f"{p},{p.parent.name}\n" for p in paths))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    embedded = {"image": [Image.open(p) for p in paths], "label": [p.parent.name for p in paths]}
    datasets.Dataset.from_dict(embedded, features=features).to_parquet(str(tmp_path / "test.parquet"))
    data = {"test": str(tmp_path / "test.parquet")}
    recipe = ImageClassification(image_config(tiny_vit, tmp_path / "train.csv", tmp_path / "run", data=data))
    recipe.processor = recipe.load_processor(str(tiny_vit))
    splits = recipe.load_splits()
    assert len(splits["test"]) == len(paths) and recipe.labels.names == sorted(COLOURS)
    for split in ("train", "test"):
        assert recipe.eval_transform(splits[split][:3])["pixel_values"].shape == (3, 3, 32, 32)


def test_images_are_converted_to_the_models_channels() -> None:
    from PIL import Image

    from hfft.modalities.image.io import load_image

    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(transparent).shape == (4, 4, 3) and load_image(transparent).min() == 255  # onto white
    assert load_image(Image.new("L", (4, 3), 7))[0, 0].tolist() == [7, 7, 7]
    assert load_image(Image.new("I;16", (2, 2), 65535)).max() == 255
    assert load_image(Image.new("RGB", (2, 2), (30, 60, 90)), channels=1).shape == (2, 2, 1)
    assert load_image(np.ones((3, 5, 6), np.float32)).shape == (5, 6, 3)  # channels-first floats in [0, 1]


def test_lora_targets_for_conv_nets_and_freeze() -> None:
    from transformers import (
        ConvNextConfig,
        ConvNextForImageClassification,
        EfficientNetConfig,
        EfficientNetForImageClassification,
    )

    from hfft.modeling import apply_tuning

    tiny_effnet = EfficientNetConfig(
        width_coefficient=0.25,
        depth_coefficient=0.25,
        hidden_dim=64,
        num_labels=3,
        image_size=32,
    )
    lora = load_config({"task": "image-classification"})
    effnet = apply_tuning(EfficientNetForImageClassification(tiny_effnet), lora)
    adapted = {n.split(".lora_A")[0] for n, _ in effnet.named_parameters() if "lora_A" in n}
    assert adapted and all(n.endswith(("expand_conv", "project_conv", "top_conv")) for n in adapted)
    assert any("depthwise_conv" in n for n, _ in effnet.named_modules())
    assert any("top_bn.modules_to_save" in n for n, p in effnet.named_parameters() if p.requires_grad)

    convnext = ConvNextForImageClassification(ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2))
    convnext = apply_tuning(convnext, lora)
    trainable = {n for n, p in convnext.named_parameters() if p.requires_grad}
    assert any("pwconv1.lora_A" in n for n in trainable) and not any("dwconv.lora" in n for n in trainable)
    assert any("classifier.modules_to_save" in n for n in trainable)

    freeze = load_config({"task": "image-classification"}, ["tuning.method=freeze"])
    model = apply_tuning(
        ConvNextForImageClassification(ConvNextConfig(hidden_sizes=[8], depths=[1], num_stages=1)), freeze
    )
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"classifier"}


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_load_and_switch_method(path: Path) -> None:
    header = path.read_text().split("\ntask:")[0]
    assert f"hfft train recipes/image/{path.name}" in header
    assert f"accelerate launch -m hfft train recipes/image/{path.name}" in header
    for method in ("lora", "full", "freeze"):
        assert load_config(path, [f"tuning.method={method}"]).tuning.method == method
    with pytest.raises(ConfigError, match="horizontal_flip"):
        load_config(path, ["augmentation.horizontal_fip=false"])


def test_shipped_recipes_exist() -> None:
    names = {p.stem for p in RECIPES.glob("*.yaml")}
    for data in ("mnist", "fashion-mnist", "cifar10"):
        assert {m for m in ("lora", "full") if any(n.startswith(data) and n.endswith(m) for n in names)} == {
            "lora",
            "full",
        }
    assert "fashion-mnist-efficientnet-offline" in names


def test_lora_run_directory_loads_in_pipeline_and_automodel(vit_lora_run: tuple, folder: Path) -> None:
    from transformers import AutoModelForImageClassification, pipeline

    recipe, _ = vit_lora_run
    model = AutoModelForImageClassification.from_pretrained(recipe.output_dir)  # merged LoRA, the run's labels
    assert model.config.id2label == recipe.labels.id2label
    paths = sample_paths(folder)[:4]
    classify = pipeline("image-classification", model=str(recipe.output_dir), top_k=None, device="cpu")
    for path, expected in zip(paths, recipe.predict(paths)):
        assert {r["label"]: r["score"] for r in classify(path)} == pytest.approx(expected["scores"], abs=1e-4)
