"""The local stack: Azurite, an Event Hubs emulator and a local Functions host."""
