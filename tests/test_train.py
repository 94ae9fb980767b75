import numpy as np
import torch
from torch import nn

from cbir.train import fit, images_to_tensor, predict


def _toy(seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(120, 4)).astype("f4")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2))


def _opt(m):
    return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)


def test_fit_learns_and_selects_on_validation():
    x, y = _toy()
    res = fit(_model(), (x[:80], y[:80]), epochs=6, batch_size=16, seed=0, optimizer=_opt,
              val_data=(x[80:], y[80:]), progress=False)
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]
    assert res.best_score == res.history["val_score"].max() and res.best_score > 0.8


def test_monitor_without_selection_keeps_the_last_weights():
    x, y = _toy()
    plain = fit(_model(), (x[:80], y[:80]), epochs=5, batch_size=16, seed=0, optimizer=_opt, progress=False)
    mon = fit(_model(), (x[:80], y[:80]), epochs=5, batch_size=16, seed=0, optimizer=_opt, progress=False,
              val_data=(x[80:], y[80:]), restore_best=False)
    assert mon.history["val_score"].notna().all() and len(mon.history) == 5  # recorded every epoch
    for a, b in zip(plain.model.state_dict().values(), mon.model.state_dict().values()):
        torch.testing.assert_close(a, b)  # the monitor changed nothing: last epoch's weights kept


def test_resume_gives_identical_weights(tmp_path):
    x, y = _toy()
    full = fit(_model(), (x, y), epochs=4, batch_size=16, seed=1, optimizer=_opt, progress=False).model
    m = _model()
    part = fit(m, (x, y), epochs=4, batch_size=16, seed=1, optimizer=_opt, ckpt_dir=tmp_path, stop_after=2,
               progress=False)
    assert len(part.history) == 2
    resumed = fit(_model(), (x, y), epochs=4, batch_size=16, seed=1, optimizer=_opt, ckpt_dir=tmp_path,
                  progress=False)
    assert resumed.resumed_from == 2 and len(resumed.history) == 4
    for a, b in zip(full.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_images_to_tensor_and_predict():
    im = np.full((2, 4, 4, 3), 255, np.uint8)
    t = images_to_tensor(im, 0.5, 0.5)
    assert t.shape == (2, 3, 4, 4) and torch.allclose(t, torch.ones_like(t))
    out = predict(nn.Flatten(), t, batch_size=1)
    assert out.shape == (2, 48)


def test_patience_stops_early_and_keeps_best():
    x, y = _toy()
    # a constant validation score never improves after epoch 1: patience 2 stops after epoch 3
    res = fit(_model(), (x[:80], y[:80]), epochs=10, batch_size=16, seed=0, optimizer=_opt,
              val_data=(x[80:], y[80:]), val_metric=lambda m, d: 0.5, patience=2, progress=False)
    assert list(res.history["epoch"]) == [1, 2, 3]
    assert res.best_epoch == 1 and res.extra["stopped_by"] == "patience"
    full = fit(_model(), (x[:80], y[:80]), epochs=3, batch_size=16, seed=0, optimizer=_opt,
               val_data=(x[80:], y[80:]), val_metric=lambda m, d: 0.5, progress=False)
    assert full.extra["stopped_by"] == "epochs"
    for a, b in zip(full.model.state_dict().values(), res.model.state_dict().values()):
        torch.testing.assert_close(a, b)  # both hold the epoch-1 weights


def test_patience_resumes_from_checkpoint(tmp_path):
    x, y = _toy()
    kw = dict(epochs=10, batch_size=16, seed=0, optimizer=_opt, val_data=(x[80:], y[80:]),
              val_metric=lambda m, d: 0.5, patience=2, progress=False, ckpt_dir=tmp_path)
    part = fit(_model(), (x[:80], y[:80]), stop_after=2, **kw)
    assert part.extra["stopped_by"] == "interrupted"
    res = fit(_model(), (x[:80], y[:80]), **kw)
    assert res.resumed_from == 2 and len(res.history) == 3 and res.extra["stopped_by"] == "patience"


def test_epoch_metrics_become_history_columns():
    x, y = _toy()
    calls = []

    def extra(m):
        calls.append(m.training)
        return {"test_loss": float(len(calls))}

    res = fit(_model(), (x, y), epochs=3, batch_size=16, seed=0, optimizer=_opt, epoch_metrics=extra,
              progress=False)
    assert list(res.history["test_loss"]) == [1.0, 2.0, 3.0]
    assert res.extra["stopped_by"] == "epochs"


def test_patience_needs_validation_data():
    x, y = _toy()
    import pytest
    with pytest.raises(ValueError, match="patience=2 needs val_data"):
        fit(_model(), (x, y), epochs=3, batch_size=16, seed=0, optimizer=_opt, patience=2, progress=False)
