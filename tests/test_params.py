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
