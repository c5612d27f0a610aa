from retrain_cli.cli import main

main()
