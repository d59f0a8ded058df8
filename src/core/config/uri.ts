/** A URI with its password replaced, for messages, logs and API answers. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password !== '') url.password = 'xxxxx';
    return url.toString();
  } catch {
    return uri.replace(/:[^:@/]*@/, ':xxxxx@');
  }
}
