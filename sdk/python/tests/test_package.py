"""The package without a server: its numbers match the C header, every
result code has its exception, arguments are checked."""

import os
import re
import unittest

import floatd
from floatd import _native, errors

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "floatd_client.h")


def header_defines():
    with open(HEADER) as f:
        text = f.read()
    return {
        name: int(value)
        for name, value in re.findall(r"^#define (FLOATD_\w+) \(?(-?\d+)\)?$", text, re.M)
    }


class Package(unittest.TestCase):
    def test_numbers_match_the_header(self):
        defines = header_defines()
        ours = {
            "FLOATD_" + name: value
            for name, value in vars(_native).items()
            if re.fullmatch(r"(OK|E_\w+|SEAT_\w+|EVENT_\w+)", name) and isinstance(value, int)
        }
        self.assertEqual(ours, defines)

    def test_every_code_has_its_exception_and_words(self):
        codes = {v for k, v in header_defines().items() if k.startswith("FLOATD_E_")}
        self.assertEqual(set(errors.BY_CODE), codes)
        for code, cls in errors.BY_CODE.items():
            self.assertTrue(issubclass(cls, floatd.Error))
            self.assertTrue(_native.text(_native.lib.floatd_strerror(code)))
        self.assertTrue(issubclass(floatd.NoSeats, floatd.Denied))
        self.assertIsInstance(errors.error_for(-999, "new"), floatd.Error)

    def test_versions(self):
        self.assertRegex(floatd.version(), r"^\d+\.\d+\.\d+")
        self.assertEqual(floatd.version(), floatd.__version__)
        self.assertEqual(floatd.protocol_version(), 1)

    def test_bad_arguments_are_refused_before_any_network(self):
        with self.assertRaises(floatd.BadArgument):
            floatd.Client("lic1")
        with self.assertRaises(floatd.BadArgument) as raised:
            floatd.Client("a:1", user="")
        self.assertIn("user", str(raised.exception))
        client = floatd.Client("a:1", user='Ada "the" Lovelace', host="h 1")
        with self.assertRaises(floatd.BadArgument):
            client.checkout("cad", count=0)
        with self.assertRaises(floatd.BadArgument):
            client.checkout("cad", wait=-1)
        client.close()
        with self.assertRaises(floatd.BadArgument):
            client.heartbeat()


if __name__ == "__main__":
    unittest.main()
