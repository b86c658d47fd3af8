"""The exceptions this package raises on purpose.

    ModerationError                 base of everything below
    ├── ConfigError                 a setting has a value we cannot use
    ├── DataError                   a corpus or data file is missing or malformed
    │   └── DatasetFetchError       downloading or verifying a public corpus failed
    ├── ModelError                  a model artifact cannot be used
    │   ├── ModelNotFoundError      no trained model where one was expected
    │   └── ModelIntegrityError     hash or library versions do not match the manifest
    ├── StoreError                  the database cannot be reached or refused a write
    ├── LoginError                  a review-UI login was refused (wrong name or password)
    │   └── AccountLockedError      too many failed logins: the account is locked for a while
    ├── DestinationRefused          a callback URL this server will not send to (internal address, credentials)
    └── NotFoundError               a site, comment, user or model version does not exist

Messages say what was expected and what was found; CLI commands print them as one line.
"""


class ModerationError(Exception):
    """Base class for every error this package raises deliberately."""


class ConfigError(ModerationError):
    """A setting has a value that cannot be used."""


class DataError(ModerationError):
    """A corpus or data file is missing or malformed."""


class DatasetFetchError(DataError):
    """Downloading or verifying a public corpus failed."""


class ModelError(ModerationError):
    """A model artifact cannot be used."""


class ModelNotFoundError(ModelError):
    """No trained model exists where one was expected."""


class ModelIntegrityError(ModelError):
    """An artifact's hash or library versions do not match its manifest."""


class StoreError(ModerationError):
    """The database cannot be reached or refused a write."""


class LoginError(ModerationError):
    """A review-UI login was refused: unknown user or wrong password (deliberately not saying which)."""


class AccountLockedError(LoginError):
    """Too many failed logins in a row: the account is locked until a moment in the future."""


class DestinationRefused(ModerationError):
    """A callback URL this server will not send to: an address inside the network, credentials, no host."""


class NotFoundError(ModerationError):
    """A site, comment, user or model version does not exist."""
