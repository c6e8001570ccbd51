//! A policy built against the frozen `bouncer:policy@0.1.1` contract in `wit/`,
//! as a policy compiled before 0.1.2 would be: no `metadata` export, imports at
//! 0.1.1. The host must still load and run it.

wit_bindgen::generate!({
    world: "policy",
    path: "wit",
});

struct Legacy;

impl Guest for Legacy {
    fn validate(request: Request, _settings: String) -> Verdict {
        bouncer::policy::host::log(bouncer::policy::host::Level::Info, "legacy policy ran", &[]);
        Verdict {
            allowed: false,
            message: Some(format!("legacy 0.1.1 policy refuses {}", request.name)),
            code: None,
            warnings: Vec::new(),
            mutation: None,
        }
    }

    fn validate_settings(_settings: String) -> Result<(), String> {
        Ok(())
    }
}

export!(Legacy);
