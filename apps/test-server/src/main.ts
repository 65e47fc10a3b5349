console.log('test-server')
