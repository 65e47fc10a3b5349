console.log('example-client')
