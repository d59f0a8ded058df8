import { createHash, publicEncrypt, constants } from 'node:crypto';

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for an empty password. */
export function nativePassword(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const stage2 = sha1(stage1);
  const mix = sha1(scramble.subarray(0, 20), stage2);
  for (let i = 0; i < mix.length; i++) mix[i] ^= stage1[i];
  return mix;
}

/** caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble). */
export function cachingSha2Password(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, 'utf8'));
  const p2 = sha256(sha256(p1), scramble.subarray(0, 20));
  for (let i = 0; i < p1.length; i++) p1[i] ^= p2[i];
  return p1;
}

/** caching_sha2_password full authentication without TLS: the password, XORed with the scramble, RSA-OAEP encrypted. */
export function rsaEncryptedPassword(password: string, scramble: Buffer, publicKeyPem: string): Buffer {
  const plain = Buffer.from(`${password}\0`, 'utf8');
  for (let i = 0; i < plain.length; i++) plain[i] ^= scramble[i % 20];
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, plain);
}
