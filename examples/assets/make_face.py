# Draws the example portrait (a friendly cartoon face) as a PNG, stdlib only.
import struct, zlib, math
W, H = 480, 600
bg = (206, 226, 240); skin = (241, 200, 160); hair = (84, 56, 40); eye = (40, 40, 50)
white = (255, 255, 255); mouth = (170, 60, 70); shirt = (60, 110, 170); cheek = (236, 170, 150)
def inside_ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
rows = []
for y in range(H):
    row = bytearray([0])
    for x in range(W):
        c = bg
        if inside_ellipse(x, y, 240, 640, 220, 150): c = shirt
        if 205 <= x <= 275 and 400 <= y <= 500: c = skin
        if inside_ellipse(x, y, 240, 250, 150, 190): c = hair
        if inside_ellipse(x, y, 240, 290, 130, 165) and y > 170: c = skin
        if inside_ellipse(x, y, 180, 340, 22, 14) or inside_ellipse(x, y, 300, 340, 22, 14): c = cheek
        if inside_ellipse(x, y, 190, 270, 24, 16) or inside_ellipse(x, y, 290, 270, 24, 16): c = white
        if inside_ellipse(x, y, 190, 272, 10, 10) or inside_ellipse(x, y, 290, 272, 10, 10): c = eye
        if inside_ellipse(x, y, 240, 370, 50, 22) and y > 370: c = mouth
        row += bytes(c)
    rows.append(bytes(row))
raw = b"".join(rows)
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
open("face.png", "wb").write(png)
