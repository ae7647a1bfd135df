"""The one error type for a user's mistake; the CLI prints it as one line and exits 2."""


class ConfigError(ValueError):
    """Bad input from the user: a config value, a flag, a file. The message names the value and what is allowed."""


class StorageError(ConfigError):
    """A file could not be written (read-only folder, disk full): reported like a user's mistake, one line."""
