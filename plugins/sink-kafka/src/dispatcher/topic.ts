/**
 * A topic expression (TiCDC): a fixed topic, or `[prefix]{schema}[middle][{table}][suffix]`. Characters a topic
 * may not hold are replaced by "_", as TiCDC does, and the name is cut to Kafka's 249 characters.
 */
export class TopicExpression {
  constructor(readonly expression: string) {}

  get isFixed(): boolean {
    return !this.expression.includes('{');
  }

  topic(schema: string, table: string): string {
    if (this.isFixed) return this.expression;
    const name = this.expression.replace('{schema}', schema).replace('{table}', table);
    return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 249);
  }
}
