"""Reading the PHP-serialized arrays WHMCS clients send (AddOrder's configoptions,
SendEmail's customvars): base64 of PHP's serialize() of a flat array. Only flat
arrays of plain values are read; nothing is ever executed or instantiated, and
anything else (objects, nested arrays, bad lengths) is refused with an ApiError
naming the parameter."""
from __future__ import annotations

import base64
import binascii
import re

from app.api.whmcs.registry import ApiError

# One key or value: i:12; | d:1.5; | b:1; | N; | s:5:"...";
_TOKEN = re.compile(rb'i:(-?\d+);|d:(-?[0-9.eE+-]+|INF|-INF|NAN);|b:([01]);|(N);|s:(\d+):"')


def decode_base64(raw: str, name: str) -> bytes:
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise ApiError(f"{name} is not base64") from None


def php_unserialize_flat(data: bytes | str, name: str) -> dict:
    """{key: value} of a serialized flat array. Keys are int or str; values are int,
    str (a PHP float keeps its text: no binary rounding), bool or None. String
    lengths count UTF-8 bytes, as PHP's do."""
    if isinstance(data, str):
        data = data.encode()
    match = re.fullmatch(rb"a:(\d+):\{(.*)\}", data.strip(), re.S)
    if not match:
        raise ApiError(f"{name} must be a base64 encoded serialized array")
    body, items, position = match[2], [], 0
    while position < len(body):
        token = _TOKEN.match(body, position)
        if token is None:
            raise ApiError(f"{name} must be a serialized array of plain values "
                           "(no objects or nested arrays)")
        integer, number, flag, null, length = token.groups()
        position = token.end()
        if integer is not None:
            items.append(int(integer))
            continue
        if number is not None:
            items.append(number.decode())
            continue
        if flag is not None or null is not None:
            items.append(flag == b"1" if flag is not None else None)
            continue
        text = body[position:position + int(length)]
        position += int(length)
        if body[position:position + 2] != b'";':
            raise ApiError(f"{name}: a serialized string is malformed")
        position += 2
        try:
            items.append(text.decode())
        except UnicodeDecodeError:
            raise ApiError(f"{name}: a serialized string is not UTF-8") from None
    if len(items) != 2 * int(match[1]):
        raise ApiError(f"{name}: the array announces {int(match[1])} entries but holds "
                       f"{len(items) / 2:g}")
    keys, values = items[0::2], items[1::2]
    if not all(isinstance(key, (int, str)) and not isinstance(key, bool) for key in keys):
        raise ApiError(f"{name}: array keys must be numbers or strings")
    return dict(zip(keys, values))
