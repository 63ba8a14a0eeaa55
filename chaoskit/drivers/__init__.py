"""The drivers: the contract every driver implements (``contract``), the registry built from the
``chaoskit.drivers`` entry points (``registry``), shared target selection (``targeting``), and one
package per built-in driver, whose ``__init__`` holds its ``Driver``."""
