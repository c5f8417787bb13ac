from centaurus.api.main import main

main()
