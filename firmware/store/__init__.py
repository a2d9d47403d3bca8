# Persistence on the instance's own flash: atomic JSON files and the transaction message queue.
