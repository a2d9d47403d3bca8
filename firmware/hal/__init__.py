# The hardware abstraction a board provides; the charger logic sees only these objects.
#
# board = make_board(config) returns an object with:
#   name                      board name ("unix", "esp32")
#   clock                     hal.clock.Clock: now() epoch seconds (float), set(epoch), uptime_ms()
#   led                       set(state): "off" | "available" | "preparing" | "charging" | "fault" | ...
#   rfid                      on_card(cb): cb(uid_str) when a card is presented
#   connectors                list of ConnectorHw, connector 1 first:
#     .pilot                  hal.pilot.Pilot: state() "A".."F", on_change(cb), offer(amps) (0 = no PWM)
#     .relay                  set(on), state() -> bool (auxiliary-contact feedback)
#     .lock                   lock() -> bool, unlock() -> bool, locked(); .fixed_cable
#     .cable()                True while a cable sits in the socket (proximity pilot; fixed cable: always)
#     .meter                  read() -> hal.meter.Reading; ok() -> bool
#     .on_fault(cb)           cb(code, active) for hardware fault lines (RCD, over-temperature, ...)
#     .ev_info()              the EV's BMS data (soc, target_soc, capacity_wh, battery_v, max_power_w,
#                             demand_w, phases, full) or None when no EV talks to the charger
#   on_fault(cb)              charge-point level fault lines (connector 0)
#   watch()                   coroutine: turns pin interrupts into callbacks from the asyncio loop
#   reset(hard)               reboot the device (never returns)
#   sim                       emulated EV/fault controls, only on boards that emulate hardware
