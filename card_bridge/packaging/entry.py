"""PyInstaller's entry script (mynagate-card-bridge.spec): the `mynagate-card-bridge` command.

Also the PIN window's child process of a frozen build: `mynagate-card-bridge --pin-window`
(card_bridge.pin.child_command), since a frozen executable has no `python -m`.
"""

from card_bridge.cli import main

raise SystemExit(main())
