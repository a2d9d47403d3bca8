# Serial console: line editor, machine records, raw REPL for mpremote, command registry.
# Empty on purpose: a module that only registers commands (from console.commands import command)
# must not pull the console task into RAM. The task itself: from console import console.
