/** An upstream as the changefeeds that read it share it (`upstream/{namespace}/{id}`). */
export interface UpstreamRecord {
  readonly id: string;
  /** The mysql:// URI, credentials included (etcd holds it; it is redacted wherever it is shown). */
  readonly uri: string;
  /** The binlog's file basename (`mysql-bin`), for coordinates. */
  readonly basename: string;
}
