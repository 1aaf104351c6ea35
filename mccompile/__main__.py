from __future__ import annotations

from mccompile.cli import main

raise SystemExit(main())
