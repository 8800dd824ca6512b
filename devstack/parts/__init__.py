"""The parts of the local stack, one per service, composed by `devstack.stack.Stack`.

`processes` (`PartProcesses`) starts, stops and finds a part's recorded process; `azurite`,
`eventhubs` and `hosts` each run one service on it: Azurite, the Event Hubs emulator, and N
local Functions hosts.
"""
