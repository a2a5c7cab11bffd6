/** Names that could leave the store folder or break a file system; every entry point refuses them. */
export const HOSTILE_NAMES: [string, RegExp][] = [
  ['..', /"\." or "\.\." segment/],
  ['../etc/passwd', /"\." or "\.\." segment/],
  ['a/../../b', /"\." or "\.\." segment/],
  ['a/..:latest', /"\." or "\.\." segment/],
  ['/etc/passwd', /absolute path/],
  ['~/x', /absolute path/],
  ['C:/x', /absolute path/],
  ['a\\b', /backslash/],
  ['..\\..\\x', /backslash/],
  ['a\0b', /NUL/],
  ['x'.repeat(201), /201 characters long \(at most 200\)/],
  ['a/b/c', /more than one "\/"/],
  ['a:b:../c', /"\." or "\.\." segment/],
  ['ab:x/y', /invalid tag/],
  ['', /empty/],
];
