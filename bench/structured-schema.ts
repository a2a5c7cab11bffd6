/** The structured-output benches' schema: a typical extraction schema, bounded so that every answer can finish. */
export const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    email: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 4 },
    active: { type: 'boolean' },
    score: { type: 'number' },
  },
  required: ['name', 'age', 'active'],
  additionalProperties: false,
};
