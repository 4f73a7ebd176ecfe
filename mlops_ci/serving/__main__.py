from mlops_ci.serving.server import main

raise SystemExit(main())
