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
