from mlops_ci.cli import main

raise SystemExit(main())
