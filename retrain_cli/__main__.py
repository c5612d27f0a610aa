from retrain_cli.cli.app import main

main()
