"""An independent ESC/POS reader for tests: walks a job byte by byte, knows the commands a
ticket uses, and gives back the text (decoded from GB18030), the QR payloads of native
``GS ( k`` store commands, and the raster images of ``GS v 0`` (for an image QR).

Written from the ESC/POS command reference, not from python-escpos, so that it checks what
the printer would receive rather than what the library meant to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

ESC, GS, FS, DLE, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x0A


@dataclass
class Decoded:
    text_bytes: bytearray = field(default_factory=bytearray)
    qr_native: list[bytes] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    chinese_mode: bool = False
    cut: bool = False
    unknown: list[str] = field(default_factory=list)

    def text(self, encoding: str = "gb18030") -> str:
        return self.text_bytes.decode(encoding)


# ESC commands and how many parameter bytes follow them
ESC_ARGS = {
    ord("@"): 0,
    ord("!"): 1,
    ord("E"): 1,
    ord("a"): 1,
    ord("-"): 1,
    ord("d"): 1,
    ord("t"): 1,
    ord("M"): 1,
    ord("G"): 1,
    ord("{"): 1,
    ord("J"): 1,
    ord("3"): 1,
    ord("2"): 0,
    ord("p"): 3,
    ord("V"): 1,
}
GS_ARGS = {
    ord("!"): 1,
    ord("B"): 1,
    ord("b"): 1,
    ord("L"): 2,
    ord("W"): 2,
    ord("h"): 1,
    ord("w"): 1,
    ord("H"): 1,
    ord("f"): 1,
}


def decode(job: bytes) -> Decoded:
    out = Decoded()
    i, n = 0, len(job)
    while i < n:
        b = job[i]
        if b == ESC and i + 1 < n:
            cmd = job[i + 1]
            if cmd in ESC_ARGS:
                i += 2 + ESC_ARGS[cmd]
                continue
            out.unknown.append(f"ESC {cmd:#x}")
            i += 2
        elif b == GS and i + 1 < n:
            cmd = job[i + 1]
            if cmd == ord("(") and job[i + 2] == ord("k"):
                size = job[i + 3] | job[i + 4] << 8
                body = job[i + 5 : i + 5 + size]
                cn, fn = body[0], body[1]
                if cn == 49 and fn == 80:  # store QR data: cn fn m data
                    out.qr_native.append(bytes(body[3:]))
                i += 5 + size
            elif cmd == ord("(") and job[i + 2] == ord("L"):
                size = job[i + 3] | job[i + 4] << 8
                i += 5 + size
            elif cmd == ord("v") and job[i + 2] == ord("0"):
                xl, xh, yl, yh = job[i + 4 : i + 8]
                width_bytes, height = xl | xh << 8, yl | yh << 8
                data = job[i + 8 : i + 8 + width_bytes * height]
                img = Image.frombytes("1", (width_bytes * 8, height), bytes(data))
                out.images.append(Image.eval(img.convert("L"), lambda p: 255 - p))
                i += 8 + width_bytes * height
            elif cmd == ord("V"):  # cut: GS V m, or GS V m n for m = 65, 66 (feed, then cut)
                out.cut = True
                i += 4 if job[i + 2] in (65, 66, 97, 98) else 3
            elif cmd in GS_ARGS:
                i += 2 + GS_ARGS[cmd]
            else:
                out.unknown.append(f"GS {cmd:#x}")
                i += 2
        elif b == FS and i + 1 < n:
            cmd = job[i + 1]
            if cmd == ord("&"):
                out.chinese_mode = True
            elif cmd == ord("."):
                out.chinese_mode = False
            i += 2
        elif b == DLE and i + 2 < n and job[i + 1] == 0x04:
            i += 3
        else:
            out.text_bytes.append(b)
            i += 1
    return out
