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
