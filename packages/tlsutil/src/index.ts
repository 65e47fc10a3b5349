export const placeholder = 'tlsutil'
