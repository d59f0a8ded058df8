/** What a capture registers about itself (TiCDC's CaptureInfo). */
export interface CaptureInfo {
  readonly id: string;
  /** host:port of its HTTP API, as other captures and the CLI reach it. */
  readonly address: string;
  readonly version: string;
  readonly pid: number;
  readonly 'start-timestamp': number;
}
