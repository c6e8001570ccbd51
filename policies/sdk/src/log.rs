//! Structured logging through the host, which tags each line with the policy and request.
//!
//! Outside WebAssembly (a policy's native unit tests) lines go to stderr instead.

/// Severity of a log line.
pub use crate::bindings::bouncer::policy::host::Level;

/// Writes a log line with key/value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::bouncer::policy::host;
        let fields: Vec<host::Field> = fields
            .iter()
            .map(|(key, value)| host::Field {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
            })
            .collect();
        host::log(level, message, &fields);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message} {fields:?}");
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Writes a warning line.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
