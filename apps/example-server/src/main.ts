console.log('example-server')
