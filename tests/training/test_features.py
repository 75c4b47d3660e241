"""Training options of the one train function: EMA, CutMix, TTA, parameter groups, staged
unfreezing, custom models, fine-tuning from a run, presets."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from ablate.data import load_data, make_loaders
from ablate.spec import ModelSpec, RunConfig
from ablate.tracking import names as keys
from ablate.training.engine import Engine, cutmix
from ablate.training.models import build_model
from ablate.training.optim import EncoderFreezer, build_optimizer, parameter_groups
from tests.conftest import artifacts_of, spec_dict


def _config(**sections) -> RunConfig:
    spec = spec_dict(**sections)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


def _engine(config: RunConfig) -> tuple[Engine, dict]:
    torch.manual_seed(0)
    data = load_data(config.data)
    return Engine(config, data, torch.device("cpu")), make_loaders(data, config, 0)


def test_ema_weights_differ_from_raw_and_are_evaluated():
    config = _config(optim={"ema": True, "ema_decay": 0.5, "lr": 0.05})
    engine, loaders = _engine(config)
    engine.start_ema()
    optimizer = build_optimizer(config.optim, engine.model)
    from tqdm import tqdm

    engine.train_epoch(loaders["train"], optimizer, 0, tqdm(disable=True))
    raw = dict(engine.model.named_parameters())
    averaged = dict(engine.eval_model.named_parameters())
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw)
    # evaluate() scores the averaged weights, not the raw ones
    counts = engine.evaluate(loaders["val"]).counts
    images, masks = next(iter(loaders["val"]))
    engine.eval_model.eval()
    with torch.no_grad():
        expected = (torch.sigmoid(engine.eval_model(images)) > 0.5).long().squeeze(1)
    from ablate.metrics.counts import ConfusionMatrix

    manual = ConfusionMatrix(2)
    for batch_images, batch_masks in loaders["val"]:
        with torch.no_grad():
            pred = (torch.sigmoid(engine.eval_model(batch_images)) > 0.5).long().squeeze(1)
        manual.update(pred, batch_masks)
    assert torch.equal(counts.matrix, manual.matrix)
    assert expected.shape == masks.shape


def test_cutmix_pastes_the_same_box_into_image_and_mask():
    torch.manual_seed(3)
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    masks = torch.stack([torch.zeros(8, 8, dtype=torch.long), torch.ones(8, 8, dtype=torch.long)])
    mixed_images, mixed_masks = cutmix(images, masks)
    changed_image = (mixed_images != images).squeeze(1)
    changed_mask = mixed_masks != masks
    assert torch.equal(changed_image, changed_mask)  # same box in both
    assert changed_mask.any()
    assert torch.equal(masks, torch.stack([torch.zeros(8, 8), torch.ones(8, 8)]).long())


def test_flip_tta_averages_the_flipped_prediction():
    config = _config(eval={"tta_flip": True})
    engine, loaders = _engine(config)
    images, _ = next(iter(loaders["val"]))
    with torch.no_grad():
        got = engine.logits(images)
        engine.model.eval()
        plain = engine.model(images)
        flipped = engine.model(images.flip(-1)).flip(-1)
    assert torch.allclose(got, (plain + flipped) / 2, atol=1e-6)
    assert not torch.allclose(got, plain)


def test_encoder_gets_its_own_learning_rate():
    config = _config(optim={"lr": 0.01, "encoder_lr_mult": 0.1})
    engine, _ = _engine(config)
    groups = parameter_groups(config.optim, engine.model)
    assert [g["lr"] for g in groups] == [0.001, 0.01]
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == sum(p.numel() for p in engine.model.parameters())


def test_encoder_unfreezes_in_stages_deepest_first():
    config = _config(optim={"freeze_encoder_epochs": 2, "unfreeze_stages": 2,
                            "unfreeze_every": 1})
    engine, _ = _engine(config)
    freezer = EncoderFreezer(config.optim, engine.model)
    encoder = list(engine.model.encoder.parameters())
    assert freezer.apply(0) == 2 and not any(p.requires_grad for p in encoder)
    assert freezer.apply(2) == 1
    assert freezer.stages[-1][0].requires_grad and not freezer.stages[0][0].requires_grad
    assert freezer.apply(3) == 0 and all(p.requires_grad for p in encoder)
    assert all(p.requires_grad for p in engine.model.decoder.parameters())


def test_presets_fill_in_only_what_is_not_written():
    config = _config(loss={"preset": "combined", "weights": {"bce": 1.0}},
                     augment={"preset": "light", "vflip": False})
    # the written bce weight and vflip stay; the preset fills in dice and hflip
    assert config.loss.weights == {"bce": 1.0, "dice": 0.5}
    assert config.augment.hflip and not config.augment.vflip and not config.augment.rot90
    # a resolved configuration validates to itself (nothing is filled in twice)
    assert type(config).model_validate(config.model_dump(mode="json")) == config


@pytest.mark.slow
def test_custom_model_trains_and_fine_tunes_from_its_run(cli, write_spec, store):
    spec = spec_dict(model={"custom": "tests.custom_models:TinyUNet", "width": 4},
                     eval={"save_weights": True})
    spec["model"] = {"custom": "tests.custom_models:TinyUNet", "width": 4}
    first = cli("train", write_spec(spec), "--store", store, "--quiet")
    assert first.exit_code == 0, first.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    (run,) = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'train'")
    assert run.data.params["model.custom"] == "tests.custom_models:TinyUNet"
    assert "model.pt" in artifacts_of(store, run.info.run_id)

    spec["model"]["init_from"] = run.info.run_id
    second = cli("train", write_spec(spec, "again.yaml"), "--store", store, "--quiet",
                 "--set", "optim.epochs=1", "--set", "optim.lr=1e-9")
    assert second.exit_code == 0, second.output
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'train'",
                              order_by=["attributes.start_time DESC"])
    checkpoint = runs[0].data.params["model.init_from"]
    assert checkpoint.endswith("model.pt")
    # the fine-tuned model starts from exactly the weights the first run logged
    saved = torch.load(checkpoint, weights_only=True)
    spec["model"]["init_from"] = checkpoint
    model = build_model(ModelSpec.model_validate(spec["model"]), in_channels=3, classes=1)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_unknown_custom_model_is_a_clean_error(cli, write_spec, store):
    spec = spec_dict()
    spec["model"] = {"custom": "tests.custom_models:Nope"}
    result = cli("train", write_spec(spec), "--store", store)
    assert result.exit_code == 2 and "model.custom" in result.output


def test_local_encoder_weights_widen_the_first_convolution(tmp_path):
    from ablate.training.models import build_model

    rgb = build_model(ModelSpec.model_validate({"arch": "Unet", "encoder": "resnet18"}), 3, 1)
    path = tmp_path / "encoder.pth"
    torch.save(rgb.encoder.state_dict(), path)
    spec = ModelSpec.model_validate({"arch": "Unet", "encoder": "resnet18",
                                     "encoder_weights": str(path)})
    five = build_model(spec, in_channels=5, classes=1)
    old, new = rgb.encoder.conv1.weight, five.encoder.conv1.weight
    assert new.shape[1] == 5
    assert torch.equal(new[:, :3], old)
    assert torch.allclose(new[:, 3], old.mean(dim=1)) and torch.allclose(new[:, 4], new[:, 3])
    assert torch.equal(five.encoder.layer1[0].conv1.weight, rgb.encoder.layer1[0].conv1.weight)


def test_full_resolution_counts_equal_per_image_resizing():
    """Scores resized once per run of same-size originals count what thresholding each
    prediction and resizing it image by image counts (mixed sizes in one batch)."""
    from ablate.metrics.counts import ConfusionMatrix, predict
    from ablate.training.engine import resize_labels

    config = _config(data={"batch_size": 4})
    engine, loaders = _engine(config)
    loader = loaders["val"]
    n = len(loader.dataset)
    generator = torch.Generator().manual_seed(1)
    sizes = [(20, 24), (20, 24), (31, 17), (20, 24), (9, 40)]
    originals = [torch.randint(0, 2, sizes[i % len(sizes)], generator=generator).numpy()
                 for i in range(n)]
    scan = (0.25, 0.5, 0.75)
    evaluated = engine.evaluate(loader, scan, originals, per_image=True)
    counts, scanned = evaluated.counts, evaluated.scanned

    expected = {t: ConfusionMatrix(2, per_image=True) for t in (0.5, *scan)}
    seen = 0
    with torch.no_grad():
        for images, _ in loader:
            logits = engine.logits(images)
            for threshold, matrix in expected.items():
                labels = predict(logits, "binary", threshold)
                for i, label_map in enumerate(labels):
                    target = torch.as_tensor(originals[seen + i]).long()
                    full = resize_labels(label_map[None], tuple(target.shape))[0]
                    matrix.update(full, target)
            seen += len(images)
    assert torch.equal(counts.matrix, expected[0.5].matrix)
    assert (counts.image_matrices == expected[0.5].image_matrices).all()
    assert len(counts.image_matrices) == n
    for threshold in scan:
        assert torch.equal(scanned[threshold].matrix, expected[threshold].matrix)
