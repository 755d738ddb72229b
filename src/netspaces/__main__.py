from netspaces.cli import main

raise SystemExit(main())
