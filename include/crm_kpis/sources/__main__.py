"""`python -m crm_kpis.sources check|coverage`: the sources against the contract, the adapters' coverage."""

from crm_kpis.sources.check_command import main

raise SystemExit(main())
