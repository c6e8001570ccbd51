//! Where a configuration comes from: the embedded default, a file, or one
//! built in memory (a test suite's `policy:`).

use std::path::PathBuf;

use super::file::{Config, ConfigError};

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The embedded default configuration.
    Embedded,
    /// A file.
    File(PathBuf),
    /// A configuration already made (a suite's `policy:`), with how to name it.
    Given(Box<Config>, String),
}

impl ConfigSource {
    /// How `/readyz`, logs and messages name it.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "the embedded default config".into(),
            Self::File(path) => path.display().to_string(),
            Self::Given(_, name) => name.clone(),
        }
    }

    /// Reads the configuration.
    ///
    /// # Errors
    /// The file cannot be read or is not a valid configuration.
    pub fn read(&self) -> Result<Config, ConfigError> {
        match self {
            Self::Embedded => Ok(Config::default_config()),
            Self::File(path) => Config::from_file(path),
            Self::Given(config, _) => Ok((**config).clone()),
        }
    }

    /// The file it is read from, if any.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Self::File(path) => Some(path),
            Self::Embedded | Self::Given(..) => None,
        }
    }
}
