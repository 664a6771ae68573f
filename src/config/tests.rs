use super::*;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn defaults_need_nothing() {
    let c = Config::from_args(args(&["--license", "a.lic"]))
        .unwrap()
        .unwrap();
    assert_eq!(c.license.as_deref(), Some("a.lic"));
    assert_eq!(c.lease, Duration::from_secs(60));
    assert_eq!(c.max_connections, 16_384);
    assert_eq!(c.role, Role::Standalone);
}

#[test]
fn durations_take_units() {
    assert_eq!(
        parse_duration("500ms", Unit::Secs).unwrap(),
        Duration::from_millis(500)
    );
    assert_eq!(
        parse_duration("3", Unit::Secs).unwrap(),
        Duration::from_secs(3)
    );
    assert_eq!(
        parse_duration("250", Unit::Millis).unwrap(),
        Duration::from_millis(250)
    );
    assert_eq!(
        parse_duration("21", Unit::Days).unwrap(),
        Duration::from_secs(21 * 86_400)
    );
    assert_eq!(
        parse_duration("1.5s", Unit::Days).unwrap(),
        Duration::from_millis(1500)
    );
    for bad in ["", "x", "3y", "-1s", "1e400"] {
        assert!(parse_duration(bad, Unit::Secs).is_err(), "{bad}");
    }
}

#[test]
fn flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("floatd-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("floatd.toml");
    std::fs::write(
        &file,
        "license = \"/etc/floatd/site.lic\"\nlease = 30\nport = 27100\ntakeover_after = \"5s\"\n",
    )
    .unwrap();
    let c = Config::from_args(args(&[
        "--config",
        file.to_str().unwrap(),
        "--port",
        "27200",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.license.as_deref(), Some("/etc/floatd/site.lic"));
    assert_eq!(c.lease, Duration::from_secs(30));
    assert_eq!(c.port, Some(27200));
    assert_eq!(c.takeover_after, Duration::from_secs(5));
    std::fs::write(&file, "colour = \"red\"\n").unwrap();
    let err = Config::from_args(args(&["--config", file.to_str().unwrap()])).unwrap_err();
    assert!(err.contains("colour"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reread_takes_peer_from_the_files_unless_a_flag_gave_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("primary.toml");
    std::fs::write(&file, "peer = \"lic2:27001\"\n").unwrap();
    let path = file.to_str().unwrap();
    let from_file = Config::from_args(args(&[
        "--config",
        path,
        "--role",
        "primary",
        "--peer-secret-file",
        "/s",
    ]))
    .unwrap()
    .unwrap();
    let pinned = Config::from_args(args(&[
        &format!("--config={path}"),
        "--role",
        "primary",
        "--peer-secret-file",
        "/s",
        "--peer",
        "lic9:27001",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(from_file.peer.as_deref(), Some("lic2:27001"));
    assert_eq!(pinned.peer.as_deref(), Some("lic9:27001"));
    std::fs::write(&file, "peer = \"lic3:27001\"\n").unwrap();
    assert_eq!(
        from_file.reread_peer().unwrap().as_deref(),
        Some("lic3:27001")
    );
    assert_eq!(pinned.reread_peer().unwrap().as_deref(), Some("lic9:27001"));
    // A file that no longer loads fails the reread, naming the file.
    std::fs::write(&file, "peer = 27001\n").unwrap();
    let err = from_file.reread_peer().unwrap_err();
    assert!(err.contains("primary.toml"), "{err}");
    // Without a file nothing changes but a flag.
    assert_eq!(Config::default().reread_peer().unwrap(), None);
}

#[test]
fn inconsistent_settings_are_refused() {
    assert!(Config::from_args(args(&["--role", "primary"])).is_err());
    assert!(Config::from_args(args(&["--bogus"])).is_err());
    assert!(Config::from_args(args(&["--lease", "0"])).is_err());
    let err = Config::from_args(args(&[
        "--role",
        "primary",
        "--peer",
        "h:1",
        "--peer-secret-file",
        "s",
        "--witness",
        "w:1",
        "--fence-after",
        "4s",
    ]))
    .unwrap_err();
    assert!(err.contains("fence_after"), "{err}");
    assert_eq!(
        Config::from_args(args(&["--help"])).unwrap().map(|_| ()),
        None
    );
}
