import pytest

from cbir.params import PROFILES, ParamsError, load, read_profile


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_loads_every_section(profile):
    from cbir.params import available_sections

    for section in available_sections():
        P = load(profile, section)
        assert P.profile == profile and P.section == section
        assert isinstance(P.seed, int) and P.threads >= 1


def test_override_replaces_value_and_is_validated():
    P = load("smoke", "quickstart", {"k": 3, "shared.seed": 7})
    assert P.k == 3 and P.seed == 7
    with pytest.raises(ParamsError, match=r"k=0 .*integer in \[1, inf\]"):
        load("smoke", "quickstart", {"k": 0})
    with pytest.raises(ParamsError, match="n_per_class='ten'.*str"):
        load("smoke", "quickstart", {"n_per_class": "ten"})


def test_unknown_override_key_names_allowed_keys():
    with pytest.raises(ParamsError, match=r"unknown override 'kk'; allowed keys: \[.*'k'"):
        load("smoke", "quickstart", {"kk": 3})


def test_unknown_key_in_yaml_names_file(tmp_root):
    p = tmp_root / "params" / "smoke.yaml"
    p.write_text(p.read_text().replace("quickstart:", "quickstart:\n  bogus_key: 1", 1))
    with pytest.raises(ParamsError, match=r"unknown key 'bogus_key' in params/smoke.yaml \[quickstart\]"):
        load("smoke", "quickstart")


def test_bad_type_in_yaml(tmp_root):
    p = tmp_root / "params" / "smoke.yaml"
    p.write_text(p.read_text().replace("  threads: 2", "  threads: two"))
    with pytest.raises(ParamsError, match="threads='two'.*in params/smoke.yaml"):
        load("smoke", "quickstart")


def test_unknown_profile_and_section():
    with pytest.raises(ParamsError, match="profile 'huge' not found.*available profiles"):
        load("huge", "quickstart")
    with pytest.raises(ParamsError, match="unknown params section 'nope'"):
        load("smoke", "nope")


def test_params_are_read_only_and_paths_derive_from_profile():
    P = load("smoke", "quickstart")
    with pytest.raises(AttributeError):
        P.seed = 3
    assert P.figures_dir.parts[-3:] == ("outputs", "smoke", "figures")
    assert P.cache_dir.parts[-2:] == ("outputs", "cache")


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_have_all_sections_and_validate(profile):
    from cbir.params import available_sections, validate_profile

    assert set(available_sections()) <= set(read_profile(profile))
    validate_profile(profile)


def test_unknown_section_is_reported(tmp_root):
    from cbir.params import validate_profile

    p = tmp_root / "params" / "smoke.yaml"
    p.write_text(p.read_text() + "\nrdcnnn: {}\n")
    with pytest.raises(ParamsError, match=r"unknown section\(s\) \['rdcnnn'\]"):
        validate_profile("smoke")


def test_override_string_as_papermill_passes_it():
    # papermill -p overrides '{"k": 5}' hands the notebook a string (the README's syntax)
    assert load("smoke", "quickstart", '{"k": 5}').k == 5
    assert load("smoke", "quickstart", "k: 4").k == 4
    assert load("smoke", "quickstart", "").k == load("smoke", "quickstart").k
    with pytest.raises(ParamsError, match=r"k=0 .*integer in \[1, inf\]"):
        load("smoke", "quickstart", '{"k": 0}')
    with pytest.raises(ParamsError, match="must be a mapping"):
        load("smoke", "quickstart", "[1, 2]")
    with pytest.raises(ParamsError, match="not JSON/YAML"):
        load("smoke", "quickstart", '{"k": 5')


def test_qualified_override_must_name_a_key_of_its_scope():
    with pytest.raises(ParamsError, match=r"unknown override 'shared.k'; allowed keys of shared: \[.*'seed'"):
        load("smoke", "quickstart", {"shared.k": 5})  # used to set quickstart's k silently
    with pytest.raises(ParamsError, match="targets section 'rdcnn'"):
        load("smoke", "quickstart", {"rdcnn.k": 5})
    assert load("smoke", "quickstart", {"quickstart.k": 6}).k == 6


def test_cross_field_checks_run_at_load_time():
    with pytest.raises(ParamsError, match=r"showcase_bits=7 is not in bits=\[.*\].*params/smoke.yaml \[drhn\]"):
        load("smoke", "drhn", {"showcase_bits": 7})
    with pytest.raises(ParamsError, match="showcase_n=9 is not in depths"):
        load("smoke", "drhn", {"showcase_n": 9})
    with pytest.raises(ParamsError, match=r"m=999999|exceeds max\(m_sweep\)"):
        load("smoke", "rdcnn", {"m": 200000})
    with pytest.raises(ParamsError, match="grid_bits has"):
        load("smoke", "latent_hash", {"grid_bits": [3]})


def test_the_readme_override_example_loads():
    import re

    from cbir.params import repo_root

    text = (repo_root() / "README.md").read_text()
    m = re.search(r"papermill notebooks/\d\d_\w+\.ipynb out\.ipynb -p profile (\w+) -p overrides\s+'([^']+)'", text)
    assert m, "README shows no papermill override example"
    P = load(m.group(1), "drhn", m.group(2))  # exactly the string papermill hands the notebook
    assert P.epochs == 2 and P.bits == [12]


# ---- sizes that must fit the dataset (checked when params load, read cheaply by cbir.data.class_counts)
def _photo_folder(root, per_class):
    from PIL import Image

    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / cls / f"{i}.png")
    return f"folder:{root}"


def test_class_counts_of_digits_and_folders(tmp_path):
    from cbir.data import class_counts

    assert class_counts("digits", "test").tolist() == [54] * 10
    assert class_counts("digits", "train").sum() == 1797 - 540
    name = _photo_folder(tmp_path / "f", {"a": 3, "b": 5, "empty": 0})
    assert class_counts(name, "all").tolist() == [3, 5]  # the empty folder is not a class
    assert class_counts("synthetic", "train") is None  # generated to any size
    assert class_counts("cifar10", "train", data_dir=tmp_path) is None  # not on disk: the loader says so


def test_per_class_size_beyond_every_class_fails_at_load():
    with pytest.raises(ParamsError, match=r"n_per_class_test=60 but no class of digits \[test\].*at most 54"):
        load("smoke", "drhn", {"dataset": "digits", "n_per_class_test": 60})
    assert load("smoke", "drhn", {"dataset": "digits", "n_per_class_test": 54}).n_per_class_test == 54


def test_total_size_counts_the_per_class_cap():
    with pytest.raises(ParamsError, match=r"n_queries=101 but digits \[test\] with cnn_test_per_class=10 holds 100"):
        load("smoke", "latent_hash", {"cnn_dataset": "digits", "cnn_test_per_class": 10, "n_queries": 101})


def test_folder_sizes_reserve_and_tiles_and_no_stale_count(tmp_path):
    name = _photo_folder(tmp_path / "p", {"a": 4, "b": 4})
    ok = {"dataset": name, "tile_grid": [1, 1], "n_nonindexed": 2, "n_base": 6, "sweep_n_base": 6}
    load("smoke", "phash", ok)
    with pytest.raises(ParamsError, match=r"n_base=7 but folder:.* minus n_nonindexed=2 holds 6 images"):
        load("smoke", "phash", {**ok, "n_base": 7})
    load("smoke", "phash", {**ok, "n_base": 24, "tile_grid": [2, 2]})  # 8 photos x 4 tiles - 2
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "p" / "a" / "new.png")  # the folder grew: counted again
    load("smoke", "phash", {**ok, "n_base": 7})


def test_retarget_sizes_checked_for_each_dataset(tmp_path):
    name = _photo_folder(tmp_path / "r", {"a": 6, "b": 6})
    with pytest.raises(ParamsError, match=r"queries_per_class=7 but no class of folder:"):
        load("smoke", "retarget", {"datasets": ["digits", name], "stability_dataset": "digits",
                                          "queries_per_class": 7})
    with pytest.raises(ParamsError, match=r"n_queries=541 but digits \[test\] holds 540"):
        load("smoke", "retarget", {"datasets": ["digits"], "stability_dataset": "digits", "n_queries": 541})


def test_progress_auto_means_bars_only_in_a_jupyter_session(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert load("smoke", "quickstart").progress is False  # papermill / nbval: no widgets stored
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert load("smoke", "quickstart").progress is True
    assert load("smoke", "quickstart", {"progress": False}).progress is False


def test_a_key_with_a_section_default_may_be_left_out_of_a_profile(tmp_path, monkeypatch):
    import re

    import cbir.params as cp

    assert cp.section_defaults("drhn") == {"plain_depths": []}
    text = (cp.params_dir() / "medium.yaml").read_text()
    (tmp_path / "older.yaml").write_text(re.sub(r"(?m)^\s*plain_depths:.*\n", "", text))
    monkeypatch.setattr(cp, "params_dir", lambda: tmp_path)
    assert cp.load("older", "drhn")["plain_depths"] == []  # a profile written before the key existed
    monkeypatch.undo()
    assert cp.load("smoke", "drhn")["plain_depths"] == [1]
