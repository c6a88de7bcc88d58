/** SHA-256 (WebCrypto, available in browsers and Node >= 20) as lowercase hex. */
export async function sha256Hex(data: ArrayBuffer | ArrayBufferView): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', data as BufferSource));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}
