#!/usr/bin/env python3
"""A fake BlueZ (org.bluez) for the gateway's end-to-end test, on a private D-Bus bus.

Not a mock of our code: it plays the part of the operating system's Bluetooth stack, so btleplug
and the whole gateway run unchanged. It advertises three devices once discovery starts:

  AA:BB:CC:DD:EE:01  "A&D_UA-651BLE_SIM"  Blood Pressure 0x1810: two stored readings as 0x2A35
                                          indications once subscribed; Battery 0x180F = 85 %;
                                          Date Time 0x2A08 (writable, the gateway sets the clock)
  AA:BB:CC:DD:EE:02  "PLX-OXI-SIM"        Pulse Oximeter 0x1822: 0x2A5F notifications, one per 50 ms
  AA:BB:CC:DD:EE:09  "NEIGHBOUR-BP"       Blood Pressure 0x1810: the flat next door; must never be
                                          connected (not on the allow-list)

It prints one line per event on stdout ("READY", "CONNECT <addr>", "WRITE <addr> <uuid> <hex>",
"NOTIFY <addr> <uuid> <hex>"), flushed, for the test to read.

Usage: fake_bluez.py BUS_ADDRESS
"""

import asyncio
import sys

from dbus_fast import BusType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method


def say(*parts):
    print(" ".join(str(p) for p in parts), flush=True)


def sig(short):
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


class Adapter(ServiceInterface):
    def __init__(self, on_discovery):
        super().__init__("org.bluez.Adapter1")
        self._powered = True
        self._discovering = False
        self._on_discovery = on_discovery

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return "00:11:22:33:44:55"

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> "s":
        return "usb:v1D6Bp0246d0541"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return "fake-hci0"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return "fake-hci0"

    @dbus_property()
    def Powered(self) -> "b":
        return self._powered

    @Powered.setter
    def Powered(self, value: "b"):
        self._powered = value

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> "b":
        return self._discovering

    @method()
    def SetDiscoveryFilter(self, filter: "a{sv}"):
        uuids = filter["UUIDs"].value if "UUIDs" in filter else []
        say("FILTER", ",".join(sorted(uuids)))

    @method()
    def StartDiscovery(self):
        self._discovering = True
        self.emit_properties_changed({"Discovering": True})
        asyncio.get_running_loop().call_soon(self._on_discovery)

    @method()
    def StopDiscovery(self):
        self._discovering = False
        self.emit_properties_changed({"Discovering": False})

    @method()
    def RemoveDevice(self, device: "o"):
        pass


class Device(ServiceInterface):
    def __init__(self, address, name, uuids, on_connect):
        super().__init__("org.bluez.Device1")
        self.address = address
        self._name = name
        self._uuids = uuids
        self._connected = False
        self._resolved = False
        self._on_connect = on_connect

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return self.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return self._name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return self._name

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> "b":
        return self._connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> "b":
        return self._resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> "n":
        return -60

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return self._uuids

    @method()
    def Connect(self):
        say("CONNECT", self.address)
        self._connected = True
        self.emit_properties_changed({"Connected": True})
        # btleplug waits for ServicesResolved after Connected.
        self._resolved = True
        self.emit_properties_changed({"ServicesResolved": True})
        self._on_connect()

    @method()
    def Disconnect(self):
        self._connected = False
        self._resolved = False
        self.emit_properties_changed({"Connected": False, "ServicesResolved": False})


class Service(ServiceInterface):
    def __init__(self, uuid, device_path):
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid
        self._device = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> "o":
        return self._device


class Characteristic(ServiceInterface):
    def __init__(self, address, uuid, service_path, flags, value=b"", on_subscribe=None):
        super().__init__("org.bluez.GattCharacteristic1")
        self.address = address
        self._uuid = uuid
        self._service = service_path
        self._flags = flags
        self._value = bytes(value)
        self._notifying = False
        self._on_subscribe = on_subscribe

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":
        return self._service

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":
        return self._flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":
        return self._value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> "b":
        return self._notifying

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        say("READ", self.address, self._uuid)
        return self._value

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}"):
        self._value = bytes(value)
        say("WRITE", self.address, self._uuid, bytes(value).hex())

    @method()
    def StartNotify(self):
        self._notifying = True
        self.emit_properties_changed({"Notifying": True})
        say("SUBSCRIBE", self.address, self._uuid)
        if self._on_subscribe:
            asyncio.get_running_loop().create_task(self._on_subscribe(self))

    @method()
    def StopNotify(self):
        self._notifying = False
        self.emit_properties_changed({"Notifying": False})

    def notify(self, data):
        self._value = bytes(data)
        say("NOTIFY", self.address, self._uuid, bytes(data).hex())
        self.emit_properties_changed({"Value": self._value})


# Two stored BP readings, Tokyo time stamps, PR and user 1 (protocol notes section 2.3).
BP_READINGS = [
    bytes.fromhex("1E 8A 00 58 00 69 00 E8 07 03 05 0E 07 09 48 00 01 04 00".replace(" ", "")),
    bytes.fromhex("06 80 00 52 00 FF 07 E9 07 01 1F 17 3B 3A 3A 00".replace(" ", "")),
]
# Continuous PLX: SpO2 96 % PR 61, then 97/70, then 95/72 (section 2.6 layouts).
PLX_READINGS = [
    bytes.fromhex("00 60 00 3D 00".replace(" ", "")),
    bytes.fromhex("00 61 00 46 00".replace(" ", "")),
    bytes.fromhex("00 5F 00 48 00".replace(" ", "")),
]


async def main(address):
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    exported = {"done": False}

    def device_tree(addr, name, services):
        base = "/org/bluez/hci0/dev_" + addr.replace(":", "_")
        objects = []
        dev = Device(addr, name, [sig(s) for s, _ in services], on_connect=lambda: None)
        objects.append((base, dev))
        handle = 0x10
        for service_uuid, chars in services:
            spath = f"{base}/service{handle:04x}"
            objects.append((spath, Service(sig(service_uuid), base)))
            handle += 1
            for char_uuid, flags, value, on_sub in chars:
                cpath = f"{spath}/char{handle:04x}"
                objects.append((cpath, Characteristic(addr, sig(char_uuid), spath, flags, value, on_sub)))
                handle += 1
        return objects

    async def send_bp(char):
        await asyncio.sleep(0.2)
        for r in BP_READINGS:
            char.notify(r)
            await asyncio.sleep(0.05)

    async def send_plx(char):
        await asyncio.sleep(0.2)
        for r in PLX_READINGS:
            char.notify(r)
            await asyncio.sleep(0.05)

    trees = [
        device_tree("AA:BB:CC:DD:EE:01", "A&D_UA-651BLE_SIM", [
            (0x1810, [(0x2A35, ["indicate"], b"", send_bp), (0x2A08, ["read", "write"], bytes(7), None)]),
            (0x180F, [(0x2A19, ["read", "notify"], bytes([85]), None)]),
        ]),
        device_tree("AA:BB:CC:DD:EE:02", "PLX-OXI-SIM", [
            (0x1822, [(0x2A5F, ["notify"], b"", send_plx)]),
            (0x180F, [(0x2A19, ["read"], bytes([64]), None)]),
        ]),
        device_tree("AA:BB:CC:DD:EE:09", "NEIGHBOUR-BP", [
            (0x1810, [(0x2A35, ["indicate"], b"", send_bp)]),
        ]),
    ]

    def on_discovery():
        if exported["done"]:
            return
        exported["done"] = True
        for tree in trees:
            # Services and characteristics first, the device last: a client that reacts to the
            # device's InterfacesAdded then finds its GATT objects already there.
            for path, iface in tree[1:]:
                bus.export(path, iface)
            bus.export(tree[0][0], tree[0][1])
            say("ADVERTISE", tree[0][1].address)

    bus.export("/org/bluez/hci0", Adapter(on_discovery))
    await bus.request_name("org.bluez")
    say("READY")
    await bus.wait_for_disconnect()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
